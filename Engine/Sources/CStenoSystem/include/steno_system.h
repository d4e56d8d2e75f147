#ifndef STENO_SYSTEM_H
#define STENO_SYSTEM_H

#include <spawn.h>

/// posix_spawn_file_actions_addclosefrom_np (glibc ≥ 2.34): the child closes every descriptor from `lowest` up,
/// so a helper program inherits nothing of the server but what it is given. Declared by glibc only with
/// _GNU_SOURCE, which Swift's Glibc module does not define; this file does.
int steno_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest);

/// mkostemp(template, O_CLOEXEC): a new file with a random name made from `template` (ending in XXXXXX),
/// opened read-write and close-on-exec. Returns the descriptor, or -1 with errno set.
int steno_make_temporary_file(char *template_path);

/// pipe2(ends, O_CLOEXEC): a pipe whose two ends close on exec. Returns 0, or -1 with errno set.
int steno_make_pipe(int ends[2]);

/// malloc_trim(0): gives the pages of freed memory back to the system (glibc keeps them for reuse otherwise).
/// Returns 1 when some memory was released.
int steno_release_free_memory(void);

#endif
