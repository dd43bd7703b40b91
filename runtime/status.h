/* status.h - the status codes of the library's functions, and the exit codes of the commands.
 *
 * A function that can fail returns one of these (0 on success) and writes its message into a
 * caller's err buffer; nothing in the library prints or exits. dinoc and dino-jit exit with
 * the same numbers. */
#ifndef DINO_STATUS_H
#define DINO_STATUS_H

typedef enum {
    DINO_OK = 0,        /* success */
    DINO_EUSER = 1,     /* a user-facing failure: bad spec, data, flag, file; NaN loss; out of memory */
    DINO_EINTERNAL = 2, /* an internal error (a bug, or a driver failing under us) */
    DINO_STOPPED = 3,   /* training stopped on request (TrainOptions.stop or on_epoch), saved when asked */
} DinoStatus;

#endif
