/** Exit statuses of every command (the same under mpirun: every rank returns the agreed one). */
export const EXIT_OK = 0;
/** Some items failed (the others were processed). */
export const EXIT_ITEMS_FAILED = 1;
/** Bad command line, parameters or input: nothing was processed. */
export const EXIT_USAGE = 2;
/** Stopped by a signal before the end (what was started is complete; rerun to finish). */
export const EXIT_STOPPED = 3;
/** An MPI rank went silent (host lost, process stopped): the others finished, the job was ended. */
export const EXIT_RANK_LOST = 4;
