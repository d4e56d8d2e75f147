// Operating-system calls that glibc declares only under _GNU_SOURCE (see steno_system.h).
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>
#include "steno_system.h"

int steno_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}

int steno_make_temporary_file(char *template_path) {
    return mkostemp(template_path, O_CLOEXEC);
}

int steno_make_pipe(int ends[2]) {
    return pipe2(ends, O_CLOEXEC);
}

int steno_release_free_memory(void) {
    return malloc_trim(0);
}
