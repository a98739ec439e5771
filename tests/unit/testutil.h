/* Shared helpers for the Criterion unit tests. */
#ifndef MAXPOOL_TESTUTIL_H
#define MAXPOOL_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Makes a fresh private temp folder for one test; returns a static path. */
static inline const char *tu_tmpdir(void)
{
    static char path[256];
    snprintf(path, sizeof path, "/tmp/maxpool-test-XXXXXX");
    if (!mkdtemp(path)) abort();
    return path;
}

#endif
