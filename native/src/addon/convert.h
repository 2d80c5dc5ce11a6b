// Conversions between JavaScript values and the core's plain C++ types. Every accessor checks the
// JavaScript type and throws a TypeError naming the field, so a wrong argument never reaches the
// compute as garbage. (The TypeScript layer validates first and gives friendlier messages; these
// checks are the last line for callers that bypass it.)
#pragma once
#include <napi.h>

#include <cmath>
#include <string>
#include <vector>

namespace revenant::addon {

inline Napi::Value field(const Napi::Object& o, const char* key) { return o.Get(key); }

inline double get_number(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be finite, got " + std::to_string(d));
  return d;
}

inline double get_number_or(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  return get_number(o, key);
}

inline int get_int(const Napi::Object& o, const char* key) {
  const double d = get_number(o, key);
  if (d != std::floor(d) || std::fabs(d) > 2147483647.0)
    throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a 32-bit integer, got " + std::to_string(d));
  return static_cast<int>(d);
}

template <typename T>
std::vector<T> get_array(const Napi::Env& env, const Napi::Value& v, const std::string& name, napi_typedarray_type type,
                         const char* type_name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw Napi::TypeError::New(env, name + " must be a " + type_name);
  Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}

inline std::vector<float> get_f32(const Napi::Object& o, const char* key) {
  return get_array<float>(o.Env(), o.Get(key), key, napi_float32_array, "Float32Array");
}

inline std::vector<int> get_i32(const Napi::Object& o, const char* key) {
  return get_array<int32_t>(o.Env(), o.Get(key), key, napi_int32_array, "Int32Array");
}

template <typename T>
Napi::TypedArrayOf<T> to_js(const Napi::Env& env, const std::vector<T>& v) {
  Napi::TypedArrayOf<T> a = Napi::TypedArrayOf<T>::New(env, v.size());
  if (!v.empty()) std::copy(v.begin(), v.end(), a.Data());
  return a;
}

}  // namespace revenant::addon
