/*  kmx_gw_arena - jansson's allocations of one request from a per-thread block. A request
    builds its answer as a jansson tree (hundreds of small objects), dumps it and frees it
    before it returns; between kmx_gw_arena_begin() and kmx_gw_arena_end() on a thread,
    those allocations are bumps of a pointer in that thread's block and their frees cost
    nothing, and _end forgets them all at once. Outside a scope, when the block is full,
    and in sanitizer builds (so ASan sees every jansson allocation), they are malloc and
    free. Rule: no jansson value made inside a scope may outlive it or cross threads.  */
#ifndef KMX_GW_ARENA_H
#define KMX_GW_ARENA_H

#include <stddef.h>

// Makes jansson allocate through the arena (once, before any thread uses jansson).
void kmx_gw_arena_install(void);
// Starts this thread's scope (scopes nest; the outermost _end resets the block).
void kmx_gw_arena_begin(void);
void kmx_gw_arena_end(void);
// Bytes of this thread's block in use (0 outside a scope).
size_t kmx_gw_arena_used(void);

#endif
