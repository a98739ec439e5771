/* config — path resolution, load with backfill, JS-compatible output and locked writes. */
#include "store/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/fileio.h"
#include "core/xalloc.h"
#include "store/options.h"

/* ------------------------------------------------------------- paths ---- */

static const char *nonempty_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static char *home_dir(void)
{
    const char *h = nonempty_env("HOME");
    if (h) return xstrdup(h);
    struct passwd *pw = getpwuid(getuid());
    return xstrdup(pw && pw->pw_dir ? pw->pw_dir : "/");
}

char *config_path(void)
{
    const char *p = nonempty_env("MAXPOOL_CONFIG");
    if (!p) p = nonempty_env("TEAMCLAUDE_CONFIG"); /* legacy name */
    if (p) return xstrdup(p);
    char *dir;
    const char *xdg = nonempty_env("XDG_CONFIG_HOME");
    if (xdg) {
        dir = xstrdup(xdg);
    } else {
        char *home = home_dir();
        dir = xasprintf("%s/.config", home);
        free(home);
    }
    char *current = xasprintf("%s/maxpool.json", dir);
    char *legacy = xasprintf("%s/teamclaude.json", dir);
    free(dir);
    /* Upgrade from the former name in place rather than starting empty. */
    if (access(current, F_OK) != 0 && access(legacy, F_OK) == 0) {
        free(current);
        return legacy;
    }
    free(legacy);
    return current;
}

static char *sibling(const char *path, const char *json_suffix, const char *other_suffix)
{
    size_t n = strlen(path);
    if (n >= 5 && strcmp(path + n - 5, ".json") == 0)
        return xasprintf("%.*s%s", (int)(n - 5), path, json_suffix);
    return xasprintf("%s%s", path, other_suffix);
}

char *config_state_path(const char *cfg_path)
{
    return sibling(cfg_path, ".state.json", ".state");
}

char *config_log_path(const char *cfg_path)
{
    return sibling(cfg_path, ".log", ".log");
}

/* -------------------------------------------------------------- load ---- */

void config_migrate_peak(json_t *cfg)
{
    json_t *sched = json_object_get(cfg, "scheduler");
    if (!json_is_object(sched)) return;
    json_t *ver = json_object_get(sched, "peakDefaultsVersion");
    if (json_is_number(ver) && json_number_value(ver) >= 1) return;
    json_t *providers = json_object_get(sched, "providers");
    if (!json_is_object(providers)) {
        /* The reference rebuilds the object from scratch when it is missing or malformed. */
        providers = json_object();
        json_object_set_new(sched, "providers", providers);
    }
    json_t *seed = options_default_value("scheduler.providers");
    const char *key;
    json_t *defs;
    json_object_foreach(seed, key, defs)
    {
        json_t *existing = json_object_get(providers, key);
        if (!json_is_object(existing)) {
            existing = json_object();
            json_object_set_new(providers, key, existing);
        }
        const char *field;
        json_t *v;
        json_object_foreach(defs, field, v)
        {
            if (!json_object_get(existing, field)) json_object_set(existing, field, v);
        }
    }
    json_decref(seed);
    json_object_set_new(sched, "peakDefaultsVersion", json_integer(1));
}

int config_load(const char *path, json_t **out, char **err)
{
    *out = NULL;
    char *data = NULL;
    size_t len = 0;
    int rc = fileio_read(path, &data, &len, 0);
    if (rc == -ENOENT) return CONFIG_MISSING;
    if (rc < 0) {
        *err = xasprintf("cannot read config at %s: %s", path, strerror(-rc));
        return -1;
    }
    json_error_t jerr;
    json_t *cfg = json_loadb(data, len, 0, &jerr);
    free(data);
    if (!cfg) {
        *err = xasprintf("config at %s is not valid JSON (corrupt?): %s (line %d, column %d)", path,
                         jerr.text, jerr.line, jerr.column);
        return -1;
    }
    if (!json_is_object(cfg)) {
        *err = xasprintf("config at %s is not valid JSON (corrupt?): the top level must be an "
                         "object",
                         path);
        json_decref(cfg);
        return -1;
    }
    /* Backfill absent top-level keys so a new default reaches old files; a present key,
     * even 0 or false, is the user's choice and wins. Nested objects are not merged. */
    json_t *defaults = options_default_config();
    const char *key;
    json_t *v;
    json_object_foreach(defaults, key, v)
    {
        if (!json_object_get(cfg, key)) json_object_set(cfg, key, v);
    }
    json_decref(defaults);
    config_migrate_peak(cfg);
    *out = cfg;
    return 0;
}

/* ------------------------------------------------------------ output ---- */

/* Appends s as a JSON string the way JSON.stringify escapes it. */
static void put_string(buf_t *b, const char *s, size_t n)
{
    buf_puts(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            buf_puts(b, "\\\"");
            break;
        case '\\':
            buf_puts(b, "\\\\");
            break;
        case '\b':
            buf_puts(b, "\\b");
            break;
        case '\f':
            buf_puts(b, "\\f");
            break;
        case '\n':
            buf_puts(b, "\\n");
            break;
        case '\r':
            buf_puts(b, "\\r");
            break;
        case '\t':
            buf_puts(b, "\\t");
            break;
        default:
            if (c < 0x20)
                buf_printf(b, "\\u%04x", c);
            else
                buf_append(b, &s[i], 1);
        }
    }
    buf_puts(b, "\"");
}

/* Appends a double as JavaScript's Number#toString does: the shortest digits that read
 * back to the same value, exponent form only below 1e-6 or from 1e21 on. */
static void put_real(buf_t *b, double v)
{
    if (!isfinite(v)) {
        buf_puts(b, "null"); /* what JSON.stringify writes for NaN and Infinity */
        return;
    }
    if (v == 0) {
        buf_puts(b, "0");
        return;
    }
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v) break;
    }
    /* tmp is [-]d[.ddd]e[+-]xx: split into sign, digits and exponent. */
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg) p++;
    char digits[24];
    int k = 0;
    for (; *p && *p != 'e'; p++)
        if (isdigit((unsigned char)*p) && k < (int)sizeof digits - 1) digits[k++] = *p;
    digits[k] = '\0';
    while (k > 1 && digits[k - 1] == '0')
        digits[--k] = '\0';
    int e10 = (int)strtol(p + 1, NULL, 10);
    int n = e10 + 1; /* value = 0.digits × 10^n */
    if (neg) buf_puts(b, "-");
    /* JavaScript writes integers up to 21 digits; past 18 we use the exponent form instead
     * so that the file reads back (jansson refuses integers beyond int64). */
    if (k <= n && n <= 18) {
        buf_puts(b, digits);
        for (int i = 0; i < n - k; i++)
            buf_puts(b, "0");
    } else if (0 < n && n < k) {
        buf_append(b, digits, (size_t)n);
        buf_printf(b, ".%s", digits + n);
    } else if (-6 < n && n <= 0) {
        buf_puts(b, "0.");
        for (int i = 0; i < -n; i++)
            buf_puts(b, "0");
        buf_puts(b, digits);
    } else {
        buf_append(b, digits, 1);
        if (k > 1) buf_printf(b, ".%s", digits + 1);
        buf_printf(b, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
}

static void put_indent(buf_t *b, int depth)
{
    for (int i = 0; i < depth; i++)
        buf_puts(b, "  ");
}

static void put_value(buf_t *b, const json_t *v, int depth)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (json_object_size(v) == 0) {
            buf_puts(b, "{}");
            break;
        }
        buf_puts(b, "{\n");
        const char *key;
        json_t *item;
        size_t i = 0;
        json_object_foreach((json_t *)v, key, item)
        {
            if (i++) buf_puts(b, ",\n");
            put_indent(b, depth + 1);
            put_string(b, key, strlen(key));
            buf_puts(b, ": ");
            put_value(b, item, depth + 1);
        }
        buf_puts(b, "\n");
        put_indent(b, depth);
        buf_puts(b, "}");
        break;
    }
    case JSON_ARRAY: {
        if (json_array_size(v) == 0) {
            buf_puts(b, "[]");
            break;
        }
        buf_puts(b, "[\n");
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (i) buf_puts(b, ",\n");
            put_indent(b, depth + 1);
            put_value(b, item, depth + 1);
        }
        buf_puts(b, "\n");
        put_indent(b, depth);
        buf_puts(b, "]");
        break;
    }
    case JSON_STRING:
        put_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        put_real(b, json_real_value(v));
        break;
    case JSON_TRUE:
        buf_puts(b, "true");
        break;
    case JSON_FALSE:
        buf_puts(b, "false");
        break;
    default:
        buf_puts(b, "null");
    }
}

char *config_dump(const json_t *cfg)
{
    buf_t b;
    buf_init(&b, 0);
    put_value(&b, cfg, 0);
    buf_puts(&b, "\n");
    return buf_steal(&b, NULL);
}

/* ------------------------------------------------------------- write ---- */

/* Writes go to the file a symlinked config points at, so a dotfiles link survives. */
static char *write_target(const char *path)
{
    char *real = realpath(path, NULL);
    if (real) return real;
    return xstrdup(path);
}

int config_update(const char *path, config_mutate_fn fn, void *ud, json_t **out, bool *created,
                  char **err)
{
    if (out) *out = NULL;
    if (created) *created = false;
    char *target = write_target(path);
    fileio_lock_t lk;
    int rc = fileio_lock(target, &lk);
    if (rc < 0) {
        *err = xasprintf("cannot lock config at %s: %s", path, strerror(-rc));
        free(target);
        return -1;
    }
    json_t *cfg = NULL;
    bool fresh = false;
    rc = config_load(target, &cfg, err);
    if (rc < 0) goto fail;
    if (rc == CONFIG_MISSING) {
        cfg = options_default_config();
        fresh = true;
    }
    int change = fn ? fn(cfg, ud, err) : CONFIG_UNCHANGED;
    if (change < 0) goto fail;
    if (change == CONFIG_UNCHANGED && !fresh) goto done;
    json_t *gen = json_object_get(cfg, "_generation");
    json_int_t g = json_is_number(gen) ? (json_int_t)json_number_value(gen) : 0;
    json_object_set_new(cfg, "_generation", json_integer(g > 0 ? g + 1 : 1));
    char *text = config_dump(cfg);
    rc = fileio_write_atomic(target, text, strlen(text));
    free(text);
    if (rc < 0) {
        *err = xasprintf("cannot write config at %s: %s", path, strerror(-rc));
        goto fail;
    }
    if (created) *created = fresh;
done:
    fileio_unlock(&lk);
    free(target);
    if (out)
        *out = cfg;
    else
        json_decref(cfg);
    return 0;
fail:
    fileio_unlock(&lk);
    free(target);
    json_decref(cfg);
    return -1;
}

int config_load_or_create(const char *path, json_t **out, bool *created, char **err)
{
    *created = false;
    int rc = config_load(path, out, err);
    if (rc != CONFIG_MISSING) return rc;
    /* Re-checked under the lock: of many first runs at once, exactly one creates. */
    return config_update(path, NULL, NULL, out, created, err);
}

/* ---------------------------------------------------------- accounts ---- */

json_t *config_accounts(json_t *cfg)
{
    json_t *a = json_object_get(cfg, "accounts");
    if (!a) {
        a = json_array();
        json_object_set_new(cfg, "accounts", a);
    }
    return json_is_array(a) ? a : NULL;
}

const char *config_account_name(const json_t *acct)
{
    const char *n = json_string_value(json_object_get(acct, "name"));
    return n ? n : "";
}

int config_account_find(const json_t *cfg, const char *name)
{
    json_t *arr = json_object_get(cfg, "accounts");
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a)
    {
        if (strcmp(config_account_name(a), name) == 0) return (int)i;
    }
    return -1;
}

int config_account_resolve(const json_t *cfg, const char *target)
{
    int idx = config_account_find(cfg, target);
    if (idx >= 0) return idx;
    if (!*target) return -1;
    for (const char *p = target; *p; p++)
        if (!isdigit((unsigned char)*p)) return -1;
    errno = 0;
    long n = strtol(target, NULL, 10);
    size_t count = json_array_size(json_object_get(cfg, "accounts"));
    if (errno || n < 1 || (size_t)n > count) return -1;
    return (int)(n - 1);
}

char *config_account_next_name(const json_t *cfg, const char *prefix)
{
    json_t *arr = json_object_get(cfg, "accounts");
    size_t plen = strlen(prefix), i, count = 0;
    json_t *a;
    json_array_foreach(arr, i, a)
    {
        if (strncmp(config_account_name(a), prefix, plen) == 0) count++;
    }
    /* The reference stops at count + 1; after a removal that name can be taken. */
    for (size_t n = count + 1;; n++) {
        char *name = xasprintf("%s%zu", prefix, n);
        if (config_account_find(cfg, name) < 0) return name;
        free(name);
    }
}

int config_account_append(json_t *cfg, json_t *acct)
{
    json_t *arr = config_accounts(cfg);
    if (!arr) {
        json_decref(acct);
        return -1;
    }
    json_array_append_new(arr, acct);
    return 0;
}

int config_account_remove(json_t *cfg, const char *name, char **err)
{
    int idx = config_account_find(cfg, name);
    if (idx < 0) {
        *err = xasprintf("Account \"%s\" not found", name);
        return -1;
    }
    json_array_remove(json_object_get(cfg, "accounts"), (size_t)idx);
    return 0;
}

int config_account_rename(json_t *cfg, const char *target, const char *newname, char **old_name,
                          char **err)
{
    int idx = config_account_resolve(cfg, target);
    if (idx < 0) {
        *err = xasprintf("Account \"%s\" not found", target);
        return -1;
    }
    json_t *arr = json_object_get(cfg, "accounts");
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a)
    {
        if ((int)i != idx && strcmp(config_account_name(a), newname) == 0) {
            *err = xasprintf("An account named \"%s\" already exists", newname);
            return -1;
        }
    }
    json_t *acct = json_array_get(arr, (size_t)idx);
    char *old = xstrdup(config_account_name(acct));
    json_object_set_new(acct, "name", json_string(newname));
    /* Keep preferred-mode routing pointing at the renamed account. */
    json_t *routing = json_object_get(cfg, "routing");
    json_t *pref = json_object_get(routing, "preferredAccount");
    if (json_is_string(pref) && strcmp(json_string_value(pref), old) == 0)
        json_object_set_new(routing, "preferredAccount", json_string(newname));
    if (old_name)
        *old_name = old;
    else
        free(old);
    return 0;
}

int config_account_dedup_uuid(json_t *cfg)
{
    json_t *arr = json_object_get(cfg, "accounts");
    if (!json_is_array(arr)) return 0;
    int removed = 0;
    /* Scan from the end so the last entry of each UUID is the one kept. */
    for (size_t i = json_array_size(arr); i-- > 0;) {
        const char *uuid =
            json_string_value(json_object_get(json_array_get(arr, i), "accountUuid"));
        if (!uuid || !*uuid) continue;
        for (size_t j = i + 1; j < json_array_size(arr); j++) {
            const char *u2 =
                json_string_value(json_object_get(json_array_get(arr, j), "accountUuid"));
            if (u2 && strcmp(uuid, u2) == 0) {
                json_array_remove(arr, i);
                removed++;
                break;
            }
        }
    }
    return removed;
}

int64_t config_account_expires_ms(const json_t *acct)
{
    json_t *v = json_object_get(acct, "expiresAt");
    if (!json_is_number(v)) return 0;
    double x = json_number_value(v);
    if (x <= 0) return 0;
    if (x < 1e12) x *= 1000; /* seconds */
    return (int64_t)x;
}
