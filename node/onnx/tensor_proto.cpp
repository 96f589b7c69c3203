// ONNX TensorProto <-> dnn::Tensor. dnnswarm computes in float32 and keeps shape operands as int64,
// so every ONNX element type maps to one of the two.
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "onnx/onnx_import.h"
#include "onnx/proto_util.h"

namespace dnn {

namespace {

using TP = onnx::TensorProto;

float half_to_float(uint16_t h) {
  int sign = (h >> 15) & 1, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  float v;
  if (exponent == 0) v = std::ldexp(float(mantissa), -24);                  // subnormal
  else if (exponent == 31) v = mantissa ? NAN : INFINITY;
  else v = std::ldexp(float(mantissa + 1024), exponent - 25);
  return sign ? -v : v;
}

float bfloat16_to_float(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

uint16_t float_to_half(float f) {  // round to nearest even
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000, mant = x & 0x7fffff;
  const int32_t biased = int32_t((x >> 23) & 0xff), exp = biased - 127 + 15;
  if (biased == 0xff) return uint16_t(sign | 0x7c00 | (mant ? 0x200 : 0));  // inf, nan
  if (exp >= 31) return uint16_t(sign | 0x7c00);                           // overflow: inf
  uint32_t h, rem, halfway;
  if (exp <= 0) {  // subnormal half (or zero)
    if (exp < -10) return uint16_t(sign);
    const uint32_t m = mant | 0x800000, shift = uint32_t(14 - exp);
    h = m >> shift, rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
  } else {
    h = (uint32_t(exp) << 10) | (mant >> 13), rem = mant & 0x1fff, halfway = 0x1000;
  }
  if (rem > halfway || (rem == halfway && (h & 1))) ++h;  // a carry into the exponent is still right
  return uint16_t(sign | h);
}

bool is_float_type(int t) {
  return t == TP::FLOAT || t == TP::DOUBLE || t == TP::FLOAT16 || t == TP::BFLOAT16;
}

size_t element_size(int t, const std::string& what) {
  switch (t) {
    case TP::FLOAT: case TP::INT32: case TP::UINT32: return 4;
    case TP::DOUBLE: case TP::INT64: case TP::UINT64: return 8;
    case TP::FLOAT16: case TP::BFLOAT16: case TP::INT16: case TP::UINT16: return 2;
    case TP::INT8: case TP::UINT8: case TP::BOOL: return 1;
  }
  throw ModelError(what + ": unsupported tensor element type " + TP::DataType_Name(TP::DataType(t)));
}

// Element i of little-endian packed raw_data, as double (exact for every integer a shape holds).
double raw_element(const char* p, int t) {
  auto get = [p](auto v) { std::memcpy(&v, p, sizeof v); return v; };
  switch (t) {
    case TP::FLOAT: return get(float());
    case TP::DOUBLE: return get(double());
    case TP::FLOAT16: return half_to_float(get(uint16_t()));
    case TP::BFLOAT16: return bfloat16_to_float(get(uint16_t()));
    case TP::INT8: return get(int8_t());
    case TP::UINT8: return get(uint8_t());
    case TP::BOOL: return get(uint8_t()) != 0;
    case TP::INT16: return get(int16_t());
    case TP::UINT16: return get(uint16_t());
    case TP::INT32: return get(int32_t());
    case TP::UINT32: return get(uint32_t());
  }
  return 0;  // 64-bit integers are copied directly, never through double
}

}  // namespace

Tensor tensor_from_raw(const onnx::TensorProto& t, const RawData* raw, const std::string& what) {
  if (t.data_location() == TP::EXTERNAL || t.external_data_size() > 0)
    throw ModelError(what + ": tensor data is stored in an external file, which dnnswarm does not read; "
                     "save the model with all tensors inside the .onnx file");
  if (t.has_segment()) throw ModelError(what + ": segmented tensors are not supported");
  Shape shape(t.dims().begin(), t.dims().end());
  const int type = t.data_type();
  const size_t esize = element_size(type, what);
  const int64_t n = checked_numel(shape, what);

  auto count_error = [&](int64_t have) {
    return ModelError(what + ": holds " + std::to_string(have) + " values but its shape " + to_string(shape) +
                      " needs " + std::to_string(n) + " (truncated or corrupt model?)");
  };
  auto typed_count = [&]() -> int64_t {
    switch (type) {
      case TP::FLOAT: return t.float_data_size();
      case TP::DOUBLE: return t.double_data_size();
      case TP::INT64: return t.int64_data_size();
      case TP::UINT32: case TP::UINT64: return t.uint64_data_size();
      default: return t.int32_data_size();
    }
  };
  // Check the count before allocating: a corrupt shape must not become a huge allocation.
  if (raw ? raw->size != size_t(n) * esize : typed_count() != n)
    throw count_error(raw ? int64_t(raw->size / esize) : typed_count());
  Tensor out(shape, is_float_type(type) ? DType::f32 : DType::i64);

  if (raw) {
    if (type == TP::FLOAT || type == TP::INT64 || type == TP::UINT64) {
      raw->copy_to(out.raw());  // same layout: one copy straight into the aligned tensor
    } else {
      for (int64_t i = 0; i < n; ++i) {
        double v = raw_element(raw->data + i * esize, type);
        if (out.dtype() == DType::f32) out.f32()[i] = float(v);
        else out.i64()[i] = int64_t(v);
      }
    }
    return out;
  }

  // Typed fields: which one holds the values depends on the element type (see onnx.proto).
  auto fill = [&](const auto& field, auto convert) {
    for (int64_t i = 0; i < n; ++i) {
      if (out.dtype() == DType::f32) out.f32()[i] = float(convert(field.Get(i)));
      else out.i64()[i] = int64_t(convert(field.Get(i)));
    }
  };
  auto same = [](auto v) { return v; };
  switch (type) {
    case TP::FLOAT: fill(t.float_data(), same); break;
    case TP::DOUBLE: fill(t.double_data(), same); break;
    case TP::INT64: fill(t.int64_data(), same); break;
    case TP::UINT32: case TP::UINT64: fill(t.uint64_data(), same); break;
    case TP::FLOAT16: fill(t.int32_data(), [](int32_t v) { return half_to_float(uint16_t(v)); }); break;
    case TP::BFLOAT16: fill(t.int32_data(), [](int32_t v) { return bfloat16_to_float(uint16_t(v)); }); break;
    case TP::BOOL: fill(t.int32_data(), [](int32_t v) { return v != 0; }); break;
    default: fill(t.int32_data(), same); break;  // INT32, INT16, INT8, UINT16, UINT8
  }
  return out;
}

int64_t checked_numel(const Shape& shape, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw ModelError(what + ": negative dimension in shape " + to_string(shape));
    if (d > 0 && n > kMaxElements / d) throw ModelError(what + ": shape " + to_string(shape) + " is implausibly large");
    n *= d;
  }
  return n;
}

Tensor tensor_from_proto(const onnx::TensorProto& t, const std::string& what) {
  if (!t.has_raw_data()) return tensor_from_raw(t, nullptr, what);
  const std::string& bytes = t.raw_data();
  RawData raw{bytes.data(), bytes.size(), [&bytes](void* dst) { std::memcpy(dst, bytes.data(), bytes.size()); }};
  return tensor_from_raw(t, &raw, what);
}

float round_to_float16(float v) { return half_to_float(float_to_half(v)); }

float round_to_bfloat16(float v) {
  if (std::isnan(v)) return v;
  uint32_t x;
  std::memcpy(&x, &v, 4);
  x += 0x7fff + ((x >> 16) & 1);  // round to nearest even on the upper 16 bits
  return bfloat16_to_float(uint16_t(x >> 16));
}

onnx::TensorProto tensor_to_proto(const Tensor& t, const std::string& name) {
  onnx::TensorProto p;
  p.set_name(name);
  for (int64_t d : t.shape()) p.add_dims(d);
  p.set_data_type(t.dtype() == DType::f32 ? TP::FLOAT : TP::INT64);
  p.set_raw_data(t.raw(), t.bytes());
  return p;
}

}  // namespace dnn
