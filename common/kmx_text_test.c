/*  Tests for kmx_text: detection, CP949 and UTF-8 conversion, invalid bytes placed.  */
#include "kmx_text.h"

#include "kmx_err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

// "국가,일본\n" in CP949 and UTF-8.
#define S_CP949 "\xB1\xB9\xB0\xA1,\xC0\xCF\xBA\xBB\n"
#define S_UTF8 "\xEA\xB5\xAD\xEA\xB0\x80,\xEC\x9D\xBC\xEB\xB3\xB8\n"

static void test_text_decode_reads_every_encoding(void **state) {
    (void)state;
    static const struct {
        const char *in;      // input bytes
        kmx_text_enc_t enc;  // asked for
        const char *out;     // UTF-8 expected
        kmx_text_enc_t read; // encoding read
        int copied;          // converted into a copy
    } cases[] = {
        {"kind,period\n", KMX_TEXT_AUTO, "kind,period\n", KMX_TEXT_UTF8, 0},
        {S_UTF8, KMX_TEXT_AUTO, S_UTF8, KMX_TEXT_UTF8, 0},
        {"\xEF\xBB\xBF" S_UTF8, KMX_TEXT_AUTO, S_UTF8, KMX_TEXT_UTF8, 0},
        {S_UTF8, KMX_TEXT_UTF8, S_UTF8, KMX_TEXT_UTF8, 0},
        {S_CP949, KMX_TEXT_AUTO, S_UTF8, KMX_TEXT_CP949, 1},
        {S_CP949, KMX_TEXT_CP949, S_UTF8, KMX_TEXT_CP949, 1},
        {"abc", KMX_TEXT_CP949, "abc", KMX_TEXT_CP949, 1},
        // CP949's extension beyond EUC-KR: 똠 is 0x8C 0x63.
        {"\x8C\x63", KMX_TEXT_AUTO, "\xEB\x98\xA0", KMX_TEXT_CP949, 1},
        {"", KMX_TEXT_AUTO, "", KMX_TEXT_UTF8, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kmx_text_t t;
        assert_int_equal(kmx_text_decode(cases[i].in, strlen(cases[i].in), cases[i].enc, &t), 0);
        assert_int_equal(t.len, strlen(cases[i].out));
        assert_memory_equal(t.data, cases[i].out, t.len);
        assert_int_equal(t.enc, cases[i].read);
        assert_int_equal(t.owned != NULL, cases[i].copied);
        assert_int_equal(t.n_bad, 0);
        assert_int_equal(t.detected, cases[i].enc == KMX_TEXT_AUTO);
        kmx_text_fini(&t);
    }
}

static void test_text_decode_places_invalid_bytes(void **state) {
    (void)state;
    static const struct {
        const char *in;      // input
        kmx_text_enc_t enc;  // asked for
        size_t line, offset; // the first invalid byte: its line and input offset
        unsigned char byte;  // and value
        const char *out;     // UTF-8 expected
    } cases[] = {
        {"a,b\nc,\xFF"
         "d\n",
         KMX_TEXT_UTF8, 2, 6, 0xFF,
         "a,b\nc,\xEF\xBF\xBD"
         "d\n"},
        {"a\nb\n\xC0\xAF\n", KMX_TEXT_UTF8, 3, 4, 0xC0, "a\nb\n\xEF\xBF\xBD\xEF\xBF\xBD\n"},
        {"x\n\xED\xA0\x80", KMX_TEXT_UTF8, 2, 2, 0xED, NULL}, // a surrogate
        {S_CP949 "\xFF\n", KMX_TEXT_CP949, 2, 10, 0xFF, S_UTF8 "\xEF\xBF\xBD\n"},
        {"\xB1\n", KMX_TEXT_CP949, 1, 0, 0xB1, "\xEF\xBF\xBD\n"}, // a lead byte alone
        // The very first byte invalid: nothing valid to copy before it.
        {"\xFF"
         "a",
         KMX_TEXT_UTF8, 1, 0, 0xFF,
         "\xEF\xBF\xBD"
         "a"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kmx_text_t t;
        assert_int_equal(kmx_text_decode(cases[i].in, strlen(cases[i].in), cases[i].enc, &t), 0);
        assert_true(t.n_bad >= 1);
        assert_int_equal(t.bad_total, t.n_bad);
        assert_int_equal(t.bad[0].line, cases[i].line);
        assert_int_equal(t.bad[0].offset, cases[i].offset);
        assert_int_equal(t.bad[0].byte, cases[i].byte);
        if (cases[i].out) {
            assert_int_equal(t.len, strlen(cases[i].out));
            assert_memory_equal(t.data, cases[i].out, t.len);
        }
        kmx_text_fini(&t);
    }
}

static void test_text_utf8_validation_and_names(void **state) {
    (void)state;
    assert_true(kmx_text_is_utf8(S_UTF8, strlen(S_UTF8)));
    assert_false(kmx_text_is_utf8(S_CP949, strlen(S_CP949)));
    assert_false(kmx_text_is_utf8("\xC0\x80", 2));         // overlong NUL
    assert_false(kmx_text_is_utf8("\xF4\x90\x80\x80", 4)); // above U+10FFFF
    assert_true(kmx_text_is_utf8("\xF0\x9F\x8E\xB5", 4));  // a musical note
    static const struct {
        const char *name;   // as written
        kmx_text_enc_t enc; // what it means
    } names[] = {{"UTF-8", KMX_TEXT_UTF8},   {"utf8", KMX_TEXT_UTF8}, {"CP949", KMX_TEXT_CP949},
                 {"euc-kr", KMX_TEXT_CP949}, {"UHC", KMX_TEXT_CP949}, {"auto", KMX_TEXT_AUTO}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        kmx_text_enc_t e;
        assert_int_equal(kmx_text_enc_parse(names[i].name, &e), 0);
        assert_int_equal(e, names[i].enc);
    }
    kmx_text_enc_t e;
    assert_int_equal(kmx_text_enc_parse("latin1", &e), KMX_ERR_INVAL);
    assert_string_equal(kmx_text_enc_name(KMX_TEXT_CP949), "CP949");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_decode_reads_every_encoding),
        cmocka_unit_test(test_text_decode_places_invalid_bytes),
        cmocka_unit_test(test_text_utf8_validation_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
