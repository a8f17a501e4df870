/*  The error table, both directions, for every code proto/kmx.proto defines: what a
    service answers for each kmx_err_t (kmx_msg_error_code) and what libkmx returns for each
    ErrorCode it receives (kmx_client_error_code). The codes are read from the generated
    descriptor, so a code added to the proto without a mapping fails here.  */
#include "kmx.pb-c.h"
#include "kmx_client.h"
#include "kmx_err.h"
#include "kmx_msg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

// Every kmx_err_t and the ErrorCode a service answers with.
static const struct {
    int err;
    Kmx__V1__ErrorCode code;
} s_to_wire[] = {
    {KMX_ERR_INVAL, KMX__V1__ERROR_CODE__BAD_REQUEST},
    {KMX_ERR_DECODE, KMX__V1__ERROR_CODE__BAD_REQUEST},
    {KMX_ERR_NOT_FOUND, KMX__V1__ERROR_CODE__NOT_FOUND},
    {KMX_ERR_UNAVAILABLE, KMX__V1__ERROR_CODE__UNAVAILABLE},
    {KMX_ERR_TIMEOUT, KMX__V1__ERROR_CODE__UNAVAILABLE},
    {KMX_ERR_TOO_BIG, KMX__V1__ERROR_CODE__TOO_LARGE},
    {KMX_ERR_UNSUPPORTED, KMX__V1__ERROR_CODE__UNSUPPORTED},
    {KMX_ERR_RESYNC, KMX__V1__ERROR_CODE__RESYNC_NEEDED},
    {KMX_ERR_FULL, KMX__V1__ERROR_CODE__STORAGE_FULL},
    {KMX_ERR_FORBIDDEN, KMX__V1__ERROR_CODE__FORBIDDEN},
    {KMX_ERR_NOMEM, KMX__V1__ERROR_CODE__INTERNAL},
    {KMX_ERR_IO, KMX__V1__ERROR_CODE__INTERNAL},
    {KMX_ERR_STORAGE, KMX__V1__ERROR_CODE__INTERNAL},
    {KMX_ERR_VERSION, KMX__V1__ERROR_CODE__INTERNAL},
    {KMX_ERR_OVERFLOW, KMX__V1__ERROR_CODE__INTERNAL},
    {KMX_ERR_INTERNAL, KMX__V1__ERROR_CODE__INTERNAL},
    {KMX_ERR_BUSY, KMX__V1__ERROR_CODE__INTERNAL},
    {KMX_ERR_DEADLINE, KMX__V1__ERROR_CODE__DEADLINE_EXCEEDED},
};

// Every ErrorCode and the kmx_err_t libkmx hands its caller.
static const struct {
    Kmx__V1__ErrorCode code;
    int err;
} s_from_wire[] = {
    {KMX__V1__ERROR_CODE__ERROR_UNSPECIFIED, KMX_ERR_INTERNAL},
    {KMX__V1__ERROR_CODE__BAD_REQUEST, KMX_ERR_INVAL},
    {KMX__V1__ERROR_CODE__NOT_FOUND, KMX_ERR_NOT_FOUND},
    {KMX__V1__ERROR_CODE__UNAVAILABLE, KMX_ERR_UNAVAILABLE},
    {KMX__V1__ERROR_CODE__INTERNAL, KMX_ERR_INTERNAL},
    {KMX__V1__ERROR_CODE__TOO_LARGE, KMX_ERR_TOO_BIG},
    {KMX__V1__ERROR_CODE__UNSUPPORTED, KMX_ERR_UNSUPPORTED},
    {KMX__V1__ERROR_CODE__RESYNC_NEEDED, KMX_ERR_RESYNC},
    {KMX__V1__ERROR_CODE__STORAGE_FULL, KMX_ERR_FULL},
    {KMX__V1__ERROR_CODE__FORBIDDEN, KMX_ERR_FORBIDDEN},
    {KMX__V1__ERROR_CODE__DEADLINE_EXCEEDED, KMX_ERR_DEADLINE},
};

#define S_N(a) (sizeof(a) / sizeof((a)[0]))

static void test_every_kmx_error_has_its_wire_code(void **state) {
    (void)state;
#define S_COUNT(name, code, text) +1
    const size_t n_errors = 0 KMX_ERR_LIST(S_COUNT);
#undef S_COUNT
    assert_int_equal(S_N(s_to_wire), n_errors); // a new kmx_err_t needs a row here
    for (size_t i = 0; i < S_N(s_to_wire); i++) {
        if (kmx_msg_error_code(s_to_wire[i].err) != s_to_wire[i].code)
            fail_msg("%s answers %d, not %d", kmx_err_name(s_to_wire[i].err),
                     kmx_msg_error_code(s_to_wire[i].err), s_to_wire[i].code);
    }
}

static void test_every_wire_code_has_its_kmx_error(void **state) {
    (void)state;
    const ProtobufCEnumDescriptor *d = &kmx__v1__error_code__descriptor;
    assert_int_equal(S_N(s_from_wire), d->n_values); // a new ErrorCode needs a row here
    for (unsigned i = 0; i < d->n_values; i++) {
        Kmx__V1__ErrorCode code = (Kmx__V1__ErrorCode)d->values[i].value;
        size_t row = 0;
        while (row < S_N(s_from_wire) && s_from_wire[row].code != code)
            row++;
        if (row == S_N(s_from_wire))
            fail_msg("ErrorCode %s has no row", d->values[i].name);
        if (kmx_client_error_code(code) != s_from_wire[row].err)
            fail_msg("ErrorCode %s becomes %s, not %s", d->values[i].name,
                     kmx_err_name(kmx_client_error_code(code)), kmx_err_name(s_from_wire[row].err));
        // Both directions agree: the error a code becomes is answered with that code.
        if (code != KMX__V1__ERROR_CODE__ERROR_UNSPECIFIED &&
            kmx_msg_error_code(kmx_client_error_code(code)) != code)
            fail_msg("ErrorCode %s does not survive a round trip", d->values[i].name);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kmx_error_has_its_wire_code),
        cmocka_unit_test(test_every_wire_code_has_its_kmx_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
