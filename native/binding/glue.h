/*
 * glue.h: the N-API helpers the addon's drivers share (udp.c, stream.c, stream_feed.c):
 * argument conversion, calling into JS, reference upkeep, export tables. Node addon only; the
 * WASM build never includes native/binding/.
 */
#ifndef TC_BINDING_GLUE_H
#define TC_BINDING_GLUE_H

#include <stddef.h>
#include <stdint.h>

#include <node_api.h>

/* A JS number. */
napi_value tcg_num(napi_env env, double v);

/* fn(...argv) with this = the object self_ref points at (undefined when gone), in the async
 * context actx; an exception it throws goes to process 'uncaughtException'. */
void tcg_make_callback(napi_env env, napi_async_context actx, napi_ref self_ref, napi_value fn,
                       size_t argc, const napi_value *argv);

/* The function fn_ref points at, called as tcg_make_callback does, in its own handle scope;
 * nothing when fn_ref is NULL or gone. */
void tcg_call_ref(napi_env env, napi_async_context actx, napi_ref self_ref, napi_ref fn_ref);

/* Deletes each non-NULL *refs[i] and NULLs it, then destroys *actx (when set) and NULLs it. */
void tcg_drop_refs(napi_env env, napi_ref *const *refs, size_t n, napi_async_context *actx);

/* ref (on) or unref the pair a driver handle holds while it keeps the loop alive. */
void tcg_ref_pair(napi_env env, napi_ref self_ref, napi_ref cb_ref, int on);

/* The pointer inside an external; 0 and a TypeError naming `what` when v is not one. */
int tcg_external(napi_env env, napi_value v, const char *what, void **out);

/* A typed array argument of type want; 0 and a TypeError otherwise. need_data: a NULL data
 * pointer (an empty or detached array) is refused; else it passes with *n 0. */
int tcg_typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *n,
              int need_data);

/* A uint32 argument; 0 and a TypeError otherwise. */
int tcg_u32arg(napi_env env, napi_value v, uint32_t *out);

/* The current data and element count of the typed array behind ref. Looked up on every
 * flush, never cached: JS can detach the buffer (structuredClone / postMessage with
 * transfer), which leaves a cached pointer dangling; a detached array reports length 0.
 * 1, or 0 with *data NULL and *n 0. Lengths above 32 bits are clamped. */
int tcg_area(napi_env env, napi_ref ref, napi_typedarray_type want, void **data, uint32_t *n);

/* A Uint8Array argument of at least `need` bytes (a stats output), need_data as tcg_typed;
 * 0 and a TypeError or RangeError otherwise. */
int tcg_out_bytes(napi_env env, napi_value v, size_t need, void **data, int need_data);

/* [family (4 or 6), port, address text] of a socket name (getsockname's answer). */
struct sockaddr_storage;
napi_value tcg_sockname(napi_env env, const struct sockaddr_storage *ss);

/* Sets each fns[i] on exports as a function under its name. */
typedef struct tcg_fn {
  const char *name;
  napi_callback cb;
} tcg_fn;
void tcg_register(napi_env env, napi_value exports, const tcg_fn *fns, size_t n);

#endif
