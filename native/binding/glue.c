/*
 * glue.c: the N-API helpers shared by the addon's drivers (see glue.h).
 */
#define _GNU_SOURCE /* libuv's headers want POSIX types under -std=c11 */
#include "glue.h"

#include <uv.h>

napi_value tcg_num(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

void tcg_make_callback(napi_env env, napi_async_context actx, napi_ref self_ref, napi_value fn,
                       size_t argc, const napi_value *argv) {
  napi_value self = NULL, result;
  napi_status s;
  if (self_ref == NULL || napi_get_reference_value(env, self_ref, &self) != napi_ok ||
      self == NULL)
    napi_get_undefined(env, &self);
  s = napi_make_callback(env, actx, self, fn, argc, argv, &result);
  if (s == napi_pending_exception) {
    napi_value e;
    if (napi_get_and_clear_last_exception(env, &e) == napi_ok) napi_fatal_exception(env, e);
  }
}

void tcg_call_ref(napi_env env, napi_async_context actx, napi_ref self_ref, napi_ref fn_ref) {
  napi_handle_scope scope;
  napi_value fn = NULL;
  if (fn_ref == NULL) return;
  napi_open_handle_scope(env, &scope);
  if (napi_get_reference_value(env, fn_ref, &fn) == napi_ok && fn != NULL)
    tcg_make_callback(env, actx, self_ref, fn, 0, NULL);
  napi_close_handle_scope(env, scope);
}

void tcg_drop_refs(napi_env env, napi_ref *const *refs, size_t n, napi_async_context *actx) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (*refs[i] != NULL) napi_delete_reference(env, *refs[i]);
    *refs[i] = NULL;
  }
  if (*actx != NULL) napi_async_destroy(env, *actx);
  *actx = NULL;
}

void tcg_ref_pair(napi_env env, napi_ref self_ref, napi_ref cb_ref, int on) {
  uint32_t rc;
  if (on) {
    napi_reference_ref(env, self_ref, &rc);
    napi_reference_ref(env, cb_ref, &rc);
  } else {
    napi_reference_unref(env, self_ref, &rc);
    napi_reference_unref(env, cb_ref, &rc);
  }
}

int tcg_external(napi_env env, napi_value v, const char *what, void **out) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, what);
    return 0;
  }
  *out = p;
  return 1;
}

int tcg_typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *n,
              int need_data) {
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, v, &type, n, data, NULL, NULL) != napi_ok || type != want ||
      (*data == NULL && (need_data || *n > 0))) {
    napi_throw_type_error(env, NULL, "turbocoap: bad typed array argument");
    return 0;
  }
  return 1;
}

int tcg_u32arg(napi_env env, napi_value v, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "turbocoap: expected a number");
    return 0;
  }
  return 1;
}

int tcg_area(napi_env env, napi_ref ref, napi_typedarray_type want, void **data, uint32_t *n) {
  napi_value v = NULL;
  napi_typedarray_type type;
  size_t len = 0;
  *data = NULL;
  *n = 0;
  if (ref == NULL || napi_get_reference_value(env, ref, &v) != napi_ok || v == NULL ||
      napi_get_typedarray_info(env, v, &type, &len, data, NULL, NULL) != napi_ok || type != want ||
      *data == NULL) {
    *data = NULL;
    return 0;
  }
  *n = len > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)len;
  return 1;
}

int tcg_out_bytes(napi_env env, napi_value v, size_t need, void **data, int need_data) {
  size_t n = 0;
  if (!tcg_typed(env, v, napi_uint8_array, data, &n, need_data)) return 0;
  if (n < need) {
    napi_throw_range_error(env, NULL, "turbocoap: stats array too small");
    return 0;
  }
  return 1;
}

void tcg_register(napi_env env, napi_value exports, const tcg_fn *fns, size_t n) {
  size_t i;
  napi_value v;
  for (i = 0; i < n; i++) {
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &v);
    napi_set_named_property(env, exports, fns[i].name, v);
  }
}

napi_value tcg_sockname(napi_env env, const struct sockaddr_storage *ss) {
  napi_value out, v;
  char name[64];
  int port;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    uv_ip4_name(s4, name, sizeof name);
    port = ntohs(s4->sin_port);
  } else {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    uv_ip6_name(s6, name, sizeof name);
    port = ntohs(s6->sin6_port);
  }
  napi_create_array_with_length(env, 3, &out);
  napi_set_element(env, out, 0, tcg_num(env, ss->ss_family == AF_INET ? 4 : 6));
  napi_set_element(env, out, 1, tcg_num(env, port));
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v);
  napi_set_element(env, out, 2, v);
  return out;
}
