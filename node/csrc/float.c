/* Float parsing and formatting exactly as Redis does it, through the C library: Redis parses
 * with strtod/strtold and prints INCRBYFLOAT results with "%.17Lf" on an x87 long double, which
 * Rust has no type for. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LONG_DOUBLE_CHARS (5 * 1024)

/* Redis's string2d: 1 on success. */
int shoal_string2d(const char *s, size_t slen, double *dp) {
    /* A plain decimal integer of up to 15 digits is exact as a double: the value strtod would
     * give, without its cost (~400 instructions a call; scores are mostly such integers). */
    if (slen > 0 && slen <= 16) {
        size_t i = s[0] == '-' ? 1 : 0;
        unsigned long long v = 0;
        if (i < slen) {
            for (; i < slen && s[i] >= '0' && s[i] <= '9'; i++) v = v * 10 + (unsigned)(s[i] - '0');
            if (i == slen && slen - (s[0] == '-') <= 15) {
                *dp = s[0] == '-' ? -(double)v : (double)v;
                return 1;
            }
        }
    }
    char stackbuf[128];
    char *buf = slen < sizeof(stackbuf) ? stackbuf : malloc(slen + 1);
    char *eptr;
    double value;
    int ok;
    if (!buf) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';
    errno = 0;
    value = strtod(buf, &eptr);
    ok = !(slen == 0 || isspace((unsigned char)buf[0]) || (size_t)(eptr - buf) != slen ||
           (errno == ERANGE && (value == HUGE_VAL || value == -HUGE_VAL || fpclassify(value) == FP_ZERO)) ||
           isnan(value));
    if (buf != stackbuf) free(buf);
    if (ok) *dp = value;
    return ok;
}

/* Redis's string2ld. */
static int string2ld(const char *s, size_t slen, long double *dp) {
    char buf[MAX_LONG_DOUBLE_CHARS];
    long double value;
    char *eptr;
    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';
    errno = 0;
    value = strtold(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' || (size_t)(eptr - buf) != slen ||
        ((errno == ERANGE) && (value == HUGE_VAL || value == -HUGE_VAL || fpclassify(value) == FP_ZERO)) ||
        errno == EINVAL || isnan(value))
        return 0;
    if (dp) *dp = value;
    return 1;
}

/* Redis's ld2string in LD_STR_HUMAN mode: 0 when it does not fit. */
static int ld2string_human(char *buf, size_t len, long double value) {
    int l;
    if (isinf(value)) {
        if (len < 5) return 0;
        if (value > 0) { memcpy(buf, "inf", 3); l = 3; }
        else { memcpy(buf, "-inf", 4); l = 4; }
        return l;
    }
    l = snprintf(buf, len, "%.17Lf", value);
    if (l < 0 || (size_t)l + 1 > len) return 0;
    if (strchr(buf, '.') != NULL) {
        char *p = buf + l - 1;
        while (*p == '0') { p--; l--; }
        if (*p == '.') l--;
    }
    if (l == 2 && buf[0] == '-' && buf[1] == '0') { buf[0] = '0'; l = 1; }
    return l;
}

/* INCRBYFLOAT: 0 ok (result in out/outlen), 1 current value not a float, 2 increment not a
 * float, 3 result NaN or infinite. `out` must hold MAX_LONG_DOUBLE_CHARS bytes. */
int shoal_incrbyfloat(const char *cur, size_t curlen, const char *incr, size_t incrlen,
                      char *out, size_t *outlen) {
    long double value = 0, by;
    if (cur && !string2ld(cur, curlen, &value)) return 1;
    if (!string2ld(incr, incrlen, &by)) return 2;
    value += by;
    if (isnan(value) || isinf(value)) return 3;
    *outlen = (size_t)ld2string_human(out, MAX_LONG_DOUBLE_CHARS, value);
    return 0;
}

/* Parses a long double the way Redis does (HINCRBYFLOAT's argument checks). */
int shoal_string2ld_ok(const char *s, size_t slen) {
    return string2ld(s, slen, NULL);
}

/* A double printed as Redis's addReplyHumanLongDouble does (GEOPOS coordinates): the length
 * written to `out`, which must hold 64 bytes. */
size_t shoal_human_double(double d, char *out) {
    int l = ld2string_human(out, 64, (long double)d);
    return l < 0 ? 0 : (size_t)l;
}

/* A double as Redis 7.0 passes a Lua number to a command ("%.17g"): the length written to
 * `out`, which must hold 32 bytes. */
size_t shoal_g17(double d, char *out) {
    int l = snprintf(out, 32, "%.17g", d);
    return l < 0 ? 0 : (size_t)l;
}
