/*  kmx_gw_arena - one block per thread, made at its first use in a scope and freed when
    the thread ends; a pointer inside the thread's block is the arena's, any other is
    malloc's.  */
#include "kmx_gw_arena.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define S_BLOCK (256u * 1024u) // bytes per thread's block
#define S_ALIGN 16u

#if defined(__SANITIZE_ADDRESS__)
#define S_ON false
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define S_ON false
#endif
#endif
#ifndef S_ON
#define S_ON true
#endif

typedef struct {
    char *base;  // S_BLOCK bytes, malloc'd; NULL until the first allocation in a scope
    size_t used; // bytes handed out in the current scope
    int depth;   // nesting of begin/end
} s_arena_t;

// Per-thread state: jansson's allocator hooks take no context argument.
static _Thread_local s_arena_t s_arena;
static pthread_key_t s_key;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_thread_end(void *block) {
    free(block);
}

static void s_make_key(void) {
    pthread_key_create(&s_key, s_thread_end);
}

static bool s_owns(const s_arena_t *a, const void *p) {
    return a->base && (const char *)p >= a->base && (const char *)p < a->base + S_BLOCK;
}

static void *s_malloc(size_t n) {
    s_arena_t *a = &s_arena;
    if (a->depth > 0 && !a->base) {
        a->base = malloc(S_BLOCK);
        if (a->base)
            pthread_setspecific(s_key, a->base);
    }
    size_t need = (n + S_ALIGN - 1) & ~(size_t)(S_ALIGN - 1);
    if (a->depth > 0 && a->base && need >= n && need <= S_BLOCK - a->used) {
        void *p = a->base + a->used;
        a->used += need;
        return p;
    }
    return malloc(n);
}

static void s_free(void *p) {
    if (!s_owns(&s_arena, p))
        free(p);
}

void kmx_gw_arena_install(void) {
    pthread_once(&s_once, s_make_key);
    if (S_ON)
        json_set_alloc_funcs(s_malloc, s_free);
}

void kmx_gw_arena_begin(void) {
    s_arena.depth++;
}

void kmx_gw_arena_end(void) {
    if (s_arena.depth > 0 && --s_arena.depth == 0)
        s_arena.used = 0;
}

size_t kmx_gw_arena_used(void) {
    return s_arena.depth > 0 ? s_arena.used : 0;
}
