/*  Tests for kmx_proc: the figures follow what the process really does (memory touched,
    descriptors opened, time passing), a thread named is that thread alone, and a thread
    pinned keeps the threads it starts on its CPUs.  */
#include "kmx_err.h"
#include "kmx_proc.h"

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

// cmocka.h needs the headers above, setjmp.h in particular.
#include <cmocka.h>

static void test_proc_counts_descriptors_opened_and_closed(void **state) {
    (void)state;
    kmx_proc_t before, during, after;
    assert_int_equal(kmx_proc_sample(&before), 0);
    int fds[5];
    for (int i = 0; i < 5; i++) {
        fds[i] = open("/dev/null", O_RDONLY);
        assert_true(fds[i] >= 0);
    }
    assert_int_equal(kmx_proc_sample(&during), 0);
    for (int i = 0; i < 5; i++)
        close(fds[i]);
    assert_int_equal(kmx_proc_sample(&after), 0);
    assert_true(before.open_fds >= 3); // stdin, stdout, stderr at least
    assert_int_equal(during.open_fds, before.open_fds + 5);
    assert_int_equal(after.open_fds, before.open_fds);
}

static void test_proc_rss_grows_with_touched_memory(void **state) {
    (void)state;
    kmx_proc_t before, after;
    assert_int_equal(kmx_proc_sample(&before), 0);
    size_t size = 32u * 1024u * 1024u;
    char *block = malloc(size);
    assert_non_null(block);
    memset(block, 1, size);
    assert_int_equal(kmx_proc_sample(&after), 0);
    assert_true(after.rss_bytes >= before.rss_bytes + size / 2);
    free(block);
}

static void test_proc_uptime_is_that_of_a_new_process(void **state) {
    (void)state;
    kmx_proc_t now;
    assert_int_equal(kmx_proc_sample(&now), 0);
    // A test binary just started; a value read from the wrong field would be far off.
    assert_true(now.uptime_s < 600);
    assert_true(now.rss_bytes > 0);
}

static void *s_named(void *arg) {
    kmx_proc_name_thread("kmx-test-thread-long"); // cut to 15 bytes
    char path[64], comm[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%ld/comm", (long)syscall(SYS_gettid));
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(comm, sizeof comm, f))
            comm[0] = '\0';
        fclose(f);
    }
    snprintf(arg, 32, "%s", comm);
    return NULL;
}

static void test_proc_names_the_calling_thread_only(void **state) {
    (void)state;
    char comm[32] = "", mine[32] = "";
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_named, comm), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_string_equal(comm, "kmx-test-thread\n");
    FILE *f = fopen("/proc/self/comm", "r");
    assert_non_null(f);
    assert_non_null(fgets(mine, sizeof mine, f));
    fclose(f);
    assert_string_not_equal(mine, comm); // the process (main thread) keeps its name
}

// The calling thread's Cpus_allowed_list from /proc ("0-1"), without its newline.
static void s_allowed(char *out, size_t size) {
    out[0] = '\0';
    FILE *f = fopen("/proc/thread-self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
            snprintf(out, size, "%s", line + 18 + strspn(line + 18, " \t"));
            out[strcspn(out, "\n")] = '\0';
        }
    }
    if (f)
        fclose(f);
}

static void *s_read_allowed(void *arg) {
    s_allowed(arg, 64);
    return NULL;
}

static void test_proc_pin_holds_the_threads_started_after(void **state) {
    (void)state;
    char before[64], one[16], seen[64] = "";
    s_allowed(before, sizeof before);
    assert_true(before[0] >= '0' && before[0] <= '9');
    snprintf(one, sizeof one, "%ld", strtol(before, NULL, 10)); // the first CPU allowed
    assert_int_equal(kmx_proc_pin(one, "the test"), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_read_allowed, seen), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_string_equal(seen, one);
    assert_int_equal(kmx_proc_pin(before, "the test"), 0); // back as it was
    s_allowed(seen, sizeof seen);
    assert_string_equal(seen, before);
    assert_int_equal(kmx_proc_pin(NULL, "the test"), 0);
    assert_int_equal(kmx_proc_pin("", "the test"), 0);
    const char *bad[] = {"x", "1-", "3-1", "0,", "-1", "1 2", "99999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(kmx_proc_pin(bad[i], "the test"), KMX_ERR_INVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proc_counts_descriptors_opened_and_closed),
        cmocka_unit_test(test_proc_rss_grows_with_touched_memory),
        cmocka_unit_test(test_proc_uptime_is_that_of_a_new_process),
        cmocka_unit_test(test_proc_names_the_calling_thread_only),
        cmocka_unit_test(test_proc_pin_holds_the_threads_started_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
