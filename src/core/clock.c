#include "core/clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

static bool virtual_on;
static int64_t virtual_now;

int64_t clock_now_ms(void)
{
    if (virtual_on) return virtual_now;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ms(void)
{
    if (virtual_on) return virtual_now;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void clock_set_virtual(int64_t now_ms)
{
    virtual_on = true;
    virtual_now = now_ms;
}

void clock_advance(int64_t ms)
{
    if (virtual_on) virtual_now += ms;
}

void clock_use_real(void)
{
    virtual_on = false;
}

char *clock_iso8601(int64_t ms, char *out, unsigned long outlen)
{
    time_t secs = (time_t)(ms / 1000);
    int milli = (int)(ms % 1000);
    if (milli < 0) {
        milli += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
    return out;
}
