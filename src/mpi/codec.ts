/**
 * Wire format of the *Object messages: one kind byte, then UTF-8.
 *   'j' JSON text   'u' undefined   'e' an error message
 * The 'e' frame lets a rank that cannot serialise its value still take part in a
 * collective (bcastObject, gatherObject), so every rank learns of the failure instead of
 * waiting for a message that never comes.
 */

const JSON_KIND = 0x6a; // 'j'
const UNDEFINED_KIND = 0x75; // 'u'
const ERROR_KIND = 0x65; // 'e'

function frame(kind: string, text: string): Uint8Array {
  return Buffer.from(kind + text, 'utf8');
}

/** Error of a value that cannot be sent, or of a message that cannot be read. */
export class ObjectCodecError extends Error {
  readonly code = 'ERR_MPI_OBJECT';
}

/** Serialises a value; throws ObjectCodecError when JSON cannot represent it. */
export function encodeObject(value: unknown): Uint8Array {
  if (value === undefined) return frame('u', '');
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new ObjectCodecError(`cannot send this value as JSON: ${(e as Error).message}`);
  }
  // JSON.stringify returns undefined for functions and symbols.
  if (text === undefined) throw new ObjectCodecError(`cannot send a ${typeof value} as JSON`);
  return frame('j', text);
}

/** Like encodeObject, but a failure becomes an 'e' frame (for collectives) plus the error. */
export function encodeForCollective(value: unknown): { bytes: Uint8Array; error?: Error } {
  try {
    return { bytes: encodeObject(value) };
  } catch (e) {
    const error = e as Error;
    return { bytes: frame('e', error.message), error };
  }
}

/**
 * Reads a frame. An 'e' frame throws ObjectCodecError with `what` (who failed) in front of
 * the sender's message; bytes that are not a frame throw naming `what` as well.
 */
export function decodeObject(bytes: Uint8Array, what: string): unknown {
  const text = (from: number) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8', from);
  switch (bytes[0]) {
    case UNDEFINED_KIND:
      if (bytes.length === 1) return undefined;
      break;
    case JSON_KIND:
      try {
        return JSON.parse(text(1)) as unknown;
      } catch {
        break;
      }
    case ERROR_KIND:
      throw new ObjectCodecError(`${what} could not serialise its value: ${text(1)}`);
  }
  throw new ObjectCodecError(`${what}: the message (${bytes.length} bytes) was not sent as an object (sendObject and friends)`);
}
