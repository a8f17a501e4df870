/*  Tests for kmx_proc: the figures follow what the process really does (memory touched,
    descriptors opened, time passing), and a thread named is that thread alone.  */
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proc_counts_descriptors_opened_and_closed),
        cmocka_unit_test(test_proc_rss_grows_with_touched_memory),
        cmocka_unit_test(test_proc_uptime_is_that_of_a_new_process),
        cmocka_unit_test(test_proc_names_the_calling_thread_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
