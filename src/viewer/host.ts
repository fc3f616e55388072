/**
 * The Host header check against DNS rebinding: a web page of another site whose name is
 * rebound to this machine sends its own name as Host, so the viewer answers only the
 * names that cannot be an attacker's: loopback addresses, `localhost`, and the host the
 * user chose with --host.
 */
import { hostname } from 'node:os';

/** A dotted IPv4 address: four decimal octets 0-255, without leading zeros (as browsers send them). */
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Addresses that listen on every interface: the user asked to be reached from elsewhere. */
const WILDCARDS = new Set(['0.0.0.0', '::', '[::]']);

function isIpv4(name: string): boolean {
  return IPV4.test(name);
}

/** The name of a Host header without its port (`[::1]` keeps its brackets); undefined when malformed. */
function hostName(header: string): string | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::\d{1,5})?$/i.exec(header);
  return m === null ? undefined : m[1].toLowerCase();
}

/** `localhost`, a dotted IPv4 loopback address or the IPv6 one (bracketed or not). */
export function isLoopback(name: string): boolean {
  const n = name.toLowerCase();
  return n === 'localhost' || n === '[::1]' || n === '::1' || (isIpv4(n) && n.startsWith('127.'));
}

/** `--host` as a Host header names it: IPv6 addresses in brackets. */
function asHostName(listen: string): string {
  const h = listen.toLowerCase();
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
}

/**
 * Whether a request with this Host header may be answered by a server listening on
 * `listen` (--host): `localhost`, any dotted IPv4 loopback address (127.x.y.z), `[::1]`,
 * and `listen` itself, with or without a port. A server listening on every interface
 * (0.0.0.0, ::) also answers IP addresses, which no DNS name can rebind, and this
 * machine's host name.
 */
export function hostAllowed(header: string | undefined, listen: string): boolean {
  const name = hostName(header ?? '');
  if (name === undefined) return false;
  if (name === asHostName(listen) || isLoopback(name)) return true;
  if (!WILDCARDS.has(listen)) return false;
  return isIpv4(name) || name.startsWith('[') || name === hostname().toLowerCase();
}
