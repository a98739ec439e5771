/* The simulated OAuth server: PKCE, single-use codes, rotating refresh tokens, expiry. */
#include "sim/oauth.h"

#include "core/crypto.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static int owner_a, owner_b;

static char *challenge_of(const char *verifier)
{
    uint8_t d[32];
    crypto_sha256(verifier, strlen(verifier), d);
    return crypto_b64url_encode(d, sizeof d);
}

Test(sim_oauth, credentials_and_expiry)
{
    sim_oauth_t *o = sim_oauth_new();
    sim_oauth_add_credential(o, "sk-ant-api03-k1", &owner_a, 0);
    sim_oauth_add_credential(o, "sk-ant-oat01-b", &owner_b, 1000);
    cr_assert_eq(sim_oauth_lookup(o, "sk-ant-api03-k1", 15, 5000), &owner_a);
    cr_assert_null(sim_oauth_lookup(o, "sk-ant-api03-k", 14, 0));
    cr_assert_eq(sim_oauth_lookup(o, "sk-ant-oat01-b", 14, 999), &owner_b);
    cr_assert_null(sim_oauth_lookup(o, "sk-ant-oat01-b", 14, 1000));
    cr_assert_eq(sim_oauth_credentials(o), 1);
    sim_oauth_remove_credential(o, "sk-ant-api03-k1");
    cr_assert_null(sim_oauth_lookup(o, "sk-ant-api03-k1", 15, 0));
    /* Many credentials survive growth of the table. */
    for (int i = 0; i < 500; i++) {
        char k[32];
        snprintf(k, sizeof k, "key-%d", i);
        sim_oauth_add_credential(o, k, i % 2 ? &owner_a : &owner_b, 0);
    }
    cr_assert_eq(sim_oauth_lookup(o, "key-321", 7, 0), &owner_a);
    cr_assert_eq(sim_oauth_credentials(o), 500);
    sim_oauth_free(o);
}

Test(sim_oauth, pkce_ok)
{
    sim_oauth_t *o = sim_oauth_new();
    const char *verifier = "verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    char *ch = challenge_of(verifier);
    char *code = sim_oauth_new_code(o, &owner_a, ch, "http://localhost:1/callback", "cid", 0);
    const char *why = "x";
    cr_assert_eq(
        sim_oauth_redeem_code(o, code, verifier, "http://localhost:1/callback", "cid", 10, &why),
        &owner_a);
    cr_assert_null(why);
    /* Single use. */
    cr_assert_null(sim_oauth_redeem_code(o, code, verifier, NULL, NULL, 10, &why));
    cr_assert_not_null(why);
    free(code);
    free(ch);
    sim_oauth_free(o);
}

Test(sim_oauth, pkce_bad_verifier_burns_code)
{
    sim_oauth_t *o = sim_oauth_new();
    char *ch = challenge_of("right");
    char *code = sim_oauth_new_code(o, &owner_a, ch, "", "", 0);
    const char *why = NULL;
    cr_assert_null(sim_oauth_redeem_code(o, code, "wrong", NULL, NULL, 1, &why));
    cr_assert_str_eq(why, "Invalid code_verifier");
    cr_assert_null(sim_oauth_redeem_code(o, code, "right", NULL, NULL, 1, &why));
    free(code);
    /* Redirect mismatch and expiry are refused. */
    code = sim_oauth_new_code(o, &owner_a, ch, "http://a/cb", "", 0);
    cr_assert_null(sim_oauth_redeem_code(o, code, "right", "http://b/cb", NULL, 1, &why));
    free(code);
    code = sim_oauth_new_code(o, &owner_a, ch, "", "", 0);
    cr_assert_null(sim_oauth_redeem_code(o, code, "right", NULL, NULL, 11 * 60 * 1000, &why));
    cr_assert_str_eq(why, "Authorization code expired");
    free(code);
    free(ch);
    sim_oauth_free(o);
}

Test(sim_oauth, refresh_rotation)
{
    sim_oauth_t *o = sim_oauth_new();
    sim_oauth_add_refresh(o, "sk-ant-ort01-a", &owner_a);
    cr_assert_eq(sim_oauth_redeem_refresh(o, "sk-ant-ort01-a"), &owner_a);
    /* Reuse fails: the token rotated. */
    cr_assert_null(sim_oauth_redeem_refresh(o, "sk-ant-ort01-a"));
    sim_grant_t g;
    sim_oauth_issue(o, &owner_a, 60000, 1000, &g);
    cr_assert(strncmp(g.access_token, "sk-ant-oat01-", 13) == 0);
    cr_assert(strncmp(g.refresh_token, "sk-ant-ort01-", 13) == 0);
    cr_assert_eq(g.expires_ms, 61000);
    cr_assert_eq(sim_oauth_lookup(o, g.access_token, strlen(g.access_token), 60999), &owner_a);
    sim_grant_t g2;
    cr_assert_eq(sim_oauth_redeem_refresh(o, g.refresh_token), &owner_a);
    sim_oauth_issue(o, &owner_a, 60000, 2000, &g2);
    cr_assert_str_neq(g.access_token, g2.access_token);
    cr_assert_null(sim_oauth_redeem_refresh(o, g.refresh_token));
    /* The older access token keeps working until its own expiry. */
    cr_assert_eq(sim_oauth_lookup(o, g.access_token, strlen(g.access_token), 3000), &owner_a);
    cr_assert_null(sim_oauth_lookup(o, g.access_token, strlen(g.access_token), 61000));
    cr_assert_eq(sim_oauth_lookup(o, g2.access_token, strlen(g2.access_token), 61000), &owner_a);
    sim_grant_free(&g);
    sim_grant_free(&g2);
    sim_oauth_free(o);
}

Test(sim_oauth, url_helpers)
{
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(
        sim_url_param("a=1&redirect_uri=http%3A%2F%2Flocalhost%3A5%2Fcb&s=x+y", "redirect_uri", &b),
        0);
    cr_assert_str_eq(b.data, "http://localhost:5/cb");
    buf_reset(&b);
    cr_assert_eq(sim_url_param("a=1&redirect_uri=z&s=x+y", "s", &b), 0);
    cr_assert_str_eq(b.data, "x y");
    buf_reset(&b);
    cr_assert_eq(sim_url_param("ab=1", "a", &b), -ENOENT);
    cr_assert_eq(sim_url_param("", "a", &b), -ENOENT);
    sim_url_encode(&b, "a b/c?d=e~");
    cr_assert_str_eq(b.data, "a%20b%2Fc%3Fd%3De~");
    buf_free(&b);
}
