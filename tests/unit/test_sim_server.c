/* The real `maxpool sim` binary (MAXPOOL_BIN, set by `make unit`), driven over raw sockets on
 * 127.0.0.1: it starts on an ephemeral port, answers, applies scripted faults and exits 0 on
 * SIGTERM. Every wait is bounded; the process is stopped by its PID. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static pid_t sim_pid = -1;
static int sim_port;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void start_sim(const char *script)
{
    const char *bin = getenv("MAXPOOL_BIN");
    cr_assert_not_null(bin, "MAXPOOL_BIN is not set (run through make unit)");
    const char *dir = tu_tmpdir();
    char sp[300], pf[300];
    snprintf(sp, sizeof sp, "%s/script.json", dir);
    snprintf(pf, sizeof pf, "%s/port", dir);
    write_file(sp, script);
    sim_pid = fork();
    cr_assert_neq(sim_pid, -1);
    if (sim_pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 2);
        execl(bin, bin, "sim", "--port", "0", "--port-file", pf, "--script", sp, "--seed", "1",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) { /* up to ~5 s */
        FILE *f = fopen(pf, "r");
        if (f) {
            int ok = fscanf(f, "%d", &sim_port);
            fclose(f);
            if (ok == 1 && sim_port > 0) return;
        }
        int st;
        cr_assert_eq(waitpid(sim_pid, &st, WNOHANG), 0, "maxpool sim exited early");
        usleep(10000);
    }
    cr_assert_fail("maxpool sim did not write its port file");
}

static int stop_sim(void)
{
    if (sim_pid <= 0) return -1;
    kill(sim_pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 500; i++) {
        pid_t r = waitpid(sim_pid, &st, WNOHANG);
        if (r == sim_pid) {
            sim_pid = -1;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    kill(sim_pid, SIGKILL);
    waitpid(sim_pid, &st, 0);
    sim_pid = -1;
    return -1;
}

static void fini(void)
{
    if (sim_pid > 0) {
        kill(sim_pid, SIGKILL);
        waitpid(sim_pid, NULL, 0);
    }
}

TestSuite(sim_server, .fini = fini, .timeout = 30);

/* Sends a raw request and reads until the server closes (bounded). Returns the bytes read,
 * or -1 when the connection was reset; *out gets a malloc'd NUL-terminated copy. */
static ssize_t roundtrip(const char *request, char **out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)sim_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect: %s", strerror(errno));
    size_t len = strlen(request);
    cr_assert_eq(write(fd, request, len), (ssize_t)len);
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    ssize_t result = 0;
    for (int i = 0; i < 500; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0) continue;
        if (n == cap) break;
        ssize_t r = read(fd, b + n, cap - n);
        if (r == 0) break;
        if (r < 0) {
            result = -1;
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    b[n] = 0;
    *out = b;
    return result < 0 ? -1 : (ssize_t)n;
}

static char *request(const char *method, const char *target, const char *auth, const char *body)
{
    char *r = NULL;
    size_t bl = body ? strlen(body) : 0;
    char head[1024];
    snprintf(head, sizeof head,
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             method, target, auth ? "x-api-key: " : "", auth ? auth : "", auth ? "\r\n" : "", bl);
    size_t hl = strlen(head);
    char *full = malloc(hl + bl + 1);
    memcpy(full, head, hl);
    if (bl) memcpy(full + hl, body, bl);
    full[hl + bl] = 0;
    ssize_t n = roundtrip(full, &r);
    free(full);
    cr_assert_geq(n, 0, "connection reset");
    return r;
}

static const char *script =
    "{\"accounts\":[{\"name\":\"max-a\",\"type\":\"oauth\",\"accessToken\":\"sk-ant-oat01-a\","
    "\"budget5h\":100000},"
    "{\"name\":\"key-1\",\"type\":\"apikey\",\"apiKey\":\"sk-ant-api03-k1\"},"
    "{\"name\":\"gone\",\"type\":\"apikey\",\"apiKey\":\"sk-ant-api03-gone\"}],"
    "\"response\":{\"deltas\":4,\"text\":\"Hi from sim\"},"
    "\"faults\":[{\"kind\":\"overloaded\",\"account\":\"key-1\",\"count\":1},"
    "{\"kind\":\"reset_before_headers\",\"account\":\"gone\"}]}";

Test(sim_server, streams_a_message_and_exits_cleanly)
{
    start_sim(script);
    char *r = request("POST", "/v1/messages?beta=true", "sk-ant-oat01-a",
                      "{\"model\":\"claude-test\",\"stream\":true,\"messages\":[]}");
    cr_assert(strncmp(r, "HTTP/1.1 200", 12) == 0, "%s", r);
    cr_assert(strstr(r, "content-type: text/event-stream"), "%s", r);
    cr_assert(strstr(r, "request-id: req_sim_"));
    cr_assert(strstr(r, "anthropic-ratelimit-unified-status: allowed"));
    cr_assert(strstr(r, "anthropic-ratelimit-unified-5h-reset: "));
    const char *order[] = {
        "event: message_start",       "event: content_block_start", "event: ping",
        "event: content_block_delta", "event: content_block_stop",  "event: message_delta",
        "event: message_stop"};
    const char *at = r;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *p = strstr(at, order[i]);
        cr_assert_not_null(p, "missing %s in %s", order[i], r);
        at = p;
    }
    cr_assert(strstr(r, "\"model\":\"claude-test\""));
    cr_assert(strstr(r, "\"output_tokens\":12}"), "%s", r);
    free(r);
    cr_assert_eq(stop_sim(), 0);
}

Test(sim_server, auth_faults_and_state)
{
    start_sim(script);
    char *r = request("POST", "/v1/messages", "sk-ant-nope", "{\"model\":\"m\"}");
    cr_assert(strncmp(r, "HTTP/1.1 401", 12) == 0, "%s", r);
    cr_assert(strstr(r, "\"authentication_error\""));
    free(r);
    r = request("POST", "/v1/messages", "sk-ant-api03-k1", "{\"model\":\"m\"}");
    cr_assert(strncmp(r, "HTTP/1.1 529", 12) == 0, "%s", r);
    cr_assert(strstr(r, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                        "\"message\":\"Overloaded\"}}"),
              "%s", r);
    cr_assert(strstr(r, "anthropic-ratelimit-requests-limit: "));
    free(r);
    r = request("POST", "/v1/messages", "sk-ant-api03-k1", "{\"model\":\"m\"}");
    cr_assert(strncmp(r, "HTTP/1.1 200", 12) == 0, "%s", r);
    cr_assert(strstr(r, "\"type\":\"message\""));
    free(r);
    r = request("POST", "/v1/messages", "sk-ant-api03-k1", "{\"max_tokens\":1}");
    cr_assert(strncmp(r, "HTTP/1.1 400", 12) == 0, "%s", r);
    free(r);
    /* Reset before headers: the client gets no byte at all. */
    char *raw = NULL;
    ssize_t n = roundtrip("POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: sk-ant-api03-gone"
                          "\r\nContent-Length: 13\r\n\r\n{\"model\":\"m\"}",
                          &raw);
    cr_assert(n <= 0, "got %zd bytes: %s", n, raw);
    free(raw);
    r = request("GET", "/_sim/state", NULL, NULL);
    cr_assert(strstr(r, "\"statuses\":{\"529\":1,\"200\":1,\"400\":1}"), "%s", r);
    free(r);
    cr_assert_eq(stop_sim(), 0);
}

static const char *stream_script =
    "{\"accounts\":[{\"name\":\"t\",\"apiKey\":\"k-trunc\"},{\"name\":\"r\",\"apiKey\":\"k-reset\"}"
    ","
    "{\"name\":\"s\",\"apiKey\":\"k-stall\"}],"
    "\"response\":{\"deltas\":3,\"deltaDelayMs\":1},"
    "\"faults\":[{\"kind\":\"truncate\",\"account\":\"t\"},"
    "{\"kind\":\"reset\",\"account\":\"r\",\"afterEvents\":3},"
    "{\"kind\":\"stall\",\"account\":\"s\",\"afterEvents\":2,\"stallMs\":50}]}";

static const char *stream_body = "{\"model\":\"m\",\"stream\":true}";

Test(sim_server, disturbed_streams)
{
    start_sim(stream_script);
    /* truncate: the chunked body ends cleanly but message_stop is cut in the middle. */
    char *r = request("POST", "/v1/messages", "k-trunc", stream_body);
    cr_assert(strncmp(r, "HTTP/1.1 200", 12) == 0, "%s", r);
    cr_assert(strstr(r, "event: message_delta"), "%s", r);
    cr_assert_null(strstr(r, "{\"type\":\"message_stop\"}"), "%s", r);
    size_t n = strlen(r);
    cr_assert(n > 5 && strcmp(r + n - 5, "0\r\n\r\n") == 0, "no clean end: %s", r);
    free(r);
    /* stall: pauses after two events, then finishes. */
    r = request("POST", "/v1/messages", "k-stall", stream_body);
    cr_assert(strstr(r, "{\"type\":\"message_stop\"}"), "%s", r);
    free(r);
    /* reset: three events arrive, then the connection is reset. */
    char *raw = NULL;
    roundtrip("POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: k-reset\r\n"
              "Content-Length: 27\r\n\r\n{\"model\":\"m\",\"stream\":true}",
              &raw);
    cr_assert(strstr(raw, "event: ping"), "%s", raw);
    cr_assert_null(strstr(raw, "event: content_block_delta"), "%s", raw);
    cr_assert_null(strstr(raw, "0\r\n\r\n"), "%s", raw);
    free(raw);
    r = request("GET", "/_sim/requests?limit=3", NULL, NULL);
    cr_assert(strstr(r, "\"account\":\"t\",\"status\":200"), "%s", r);
    cr_assert(strstr(r, "\"account\":\"r\",\"status\":200"), "%s", r);
    free(r);
    cr_assert_eq(stop_sim(), 0);
}
