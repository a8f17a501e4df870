/*  kmx_report - scaled amounts for tables and CSV. A decimal string is shifted, never
    converted, so the printed figure is exactly the stored one over a power of ten.  */
#include "kmx_report.h"

#include "kmx_err.h"

#include <stdio.h>
#include <string.h>

int kmx_report_scale_parse(const char *name, int *out) {
    static const struct {
        const char *name; // --scale word
        int exp;          // its power of ten
    } scales[] = {{"none", 0},
                  {"auto", KMX_REPORT_SCALE_AUTO},
                  {"thousand", 3},
                  {"million", 6},
                  {"billion", 9}};
    *out = 0;
    if (!name)
        return 0;
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++) {
        if (strcmp(name, scales[i].name) == 0) {
            *out = scales[i].exp;
            return 0;
        }
    }
    return KMX_ERR_INVAL;
}

const char *kmx_report_scale_word(int exp) {
    return exp == 9 ? "billion" : exp == 6 ? "million" : exp == 3 ? "thousand" : "";
}

// Digits before the decimal point of dec, sign excluded.
static size_t s_int_digits(const char *dec) {
    if (*dec == '-')
        dec++;
    size_t n = strspn(dec, "0123456789");
    return n;
}

int kmx_report_scale_auto(const Kmx__V1__QueryResult *res) {
    size_t widest = 0;
    for (size_t r = 0; r < res->n_rows; r++) {
        const Kmx__V1__Row *row = res->rows[r];
        if (row->sum && (!row->has_adds || row->adds)) {
            size_t n = s_int_digits(row->sum);
            widest = n > widest ? n : widest;
        }
    }
    return widest >= 10 ? 9 : widest >= 7 ? 6 : widest >= 4 ? 3 : 0;
}

int kmx_report_scale_text(const char *dec, int exp, char *out, size_t size) {
    int neg = dec[0] == '-';
    const char *p = dec + neg;
    size_t ni = strspn(p, "0123456789");
    const char *frac = p[ni] == '.' ? p + ni + 1 : p + ni;
    size_t nf = strspn(frac, "0123456789");
    if (ni == 0 || frac[nf] != '\0' || exp < 0 || exp > 18)
        return KMX_ERR_INVAL;
    char digits[96];
    if (ni + nf + (size_t)exp + 2 > sizeof digits)
        return KMX_ERR_INVAL;
    // Left-pad with zeros so at least one integer digit remains after the shift.
    size_t pad = (size_t)exp >= ni ? (size_t)exp - ni + 1 : 0;
    memset(digits, '0', pad);
    memcpy(digits + pad, p, ni);
    memcpy(digits + pad + ni, frac, nf);
    size_t total = pad + ni + nf, point = pad + ni - (size_t)exp; // digits before the point
    digits[total] = '\0';
    size_t lead = 0;
    while (lead + 1 < point && digits[lead] == '0')
        lead++;
    size_t end = total;
    while (end > point && digits[end - 1] == '0')
        end--;
    int zero = 1;
    for (size_t i = lead; i < end; i++)
        zero &= digits[i] == '0';
    int n = snprintf(out, size, "%s%.*s%s%.*s", neg && !zero ? "-" : "", (int)(point - lead),
                     digits + lead, end > point ? "." : "", (int)(end - point), digits + point);
    return n < 0 || (size_t)n >= size ? KMX_ERR_INVAL : 0;
}
