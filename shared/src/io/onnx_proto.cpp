// Protobuf wire format (https://protobuf.dev/programming-guides/encoding/) for the ONNX messages
// of onnx_proto.h; field numbers from onnx/onnx.proto.
#include "onnx_proto.h"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace tagnet::onnx {

namespace {

enum Wire { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

// Reads one message: [begin, end) of the whole buffer, `base` for byte offsets in errors.
class Reader {
 public:
  Reader(const uint8_t* base, const uint8_t* p, const uint8_t* end) : base_(base), p_(p), end_(end) {}
  bool done() const { return p_ >= end_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(what + " at byte " + std::to_string(p_ - base_));
  }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail("truncated (a number runs past the end)");
      const uint8_t b = *p_++;
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("not an ONNX file (a number longer than 10 bytes)");
  }

  // Next field: its number and wire type.
  std::pair<uint32_t, int> tag() {
    const uint64_t t = varint();
    const uint64_t field = t >> 3;
    const int wire = static_cast<int>(t & 7);
    if (field == 0 || field > (1u << 29) || (wire != kVarint && wire != kFixed64 && wire != kLen && wire != kFixed32))
      fail("not an ONNX file (bad field tag " + std::to_string(t) + ")");
    return {static_cast<uint32_t>(field), wire};
  }

  // A length-delimited field's bytes, as a reader of their own.
  Reader sub() {
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) fail("truncated (a field of " + std::to_string(n) + " bytes runs past the end)");
    Reader r(base_, p_, p_ + n);
    p_ += n;
    return r;
  }
  std::string str() {
    Reader r = sub();
    return std::string(reinterpret_cast<const char*>(r.p_), static_cast<size_t>(r.end_ - r.p_));
  }
  uint32_t fixed32() {
    if (end_ - p_ < 4) fail("truncated (a 4-byte value runs past the end)");
    uint32_t v;
    std::memcpy(&v, p_, 4);   // little-endian, as the wire format and every target tagnet builds for
    p_ += 4;
    return v;
  }
  uint64_t fixed64() {
    if (end_ - p_ < 8) fail("truncated (an 8-byte value runs past the end)");
    uint64_t v;
    std::memcpy(&v, p_, 8);
    p_ += 8;
    return v;
  }
  void skip(int wire) {
    switch (wire) {
      case kVarint: varint(); break;
      case kFixed64: fixed64(); break;
      case kLen: sub(); break;
      case kFixed32: fixed32(); break;
    }
  }
  void expect(int wire, int want, const char* field) {
    if (wire != want) fail(std::string("not an ONNX file (field ") + field + " has the wrong wire type)");
  }
  const uint8_t* pos() const { return p_; }
  size_t left() const { return static_cast<size_t>(end_ - p_); }

  // A repeated scalar field, packed (one length-delimited run) or not (one value per tag).
  template <typename T, typename Read>
  void repeated(int wire, int scalar_wire, std::vector<T>& out, Read read, const char* field) {
    if (wire == kLen) {
      Reader r = sub();
      while (!r.done()) out.push_back(read(r));
    } else {
      expect(wire, scalar_wire, field);
      out.push_back(read(*this));
    }
  }

 private:
  const uint8_t* base_;
  const uint8_t* p_;
  const uint8_t* end_;
};

float as_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
double as_double(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

const auto read_i64 = [](Reader& r) { return static_cast<int64_t>(r.varint()); };
const auto read_f32 = [](Reader& r) { return as_float(r.fixed32()); };
const auto read_f64 = [](Reader& r) { return as_double(r.fixed64()); };

int32_t read_i32(Reader& r) { return static_cast<int32_t>(r.varint()); }

TensorProto parse_tensor(Reader r) {
  TensorProto t;
  std::vector<double> doubles;
  std::string raw;
  bool has_raw = false;
  while (!r.done()) {
    auto [field, wire] = r.tag();
    switch (field) {
      case 1: r.repeated(wire, kVarint, t.dims, read_i64, "dims"); break;
      case 2: r.expect(wire, kVarint, "data_type"); t.data_type = read_i32(r); break;
      case 4: r.repeated(wire, kFixed32, t.floats, read_f32, "float_data"); break;
      case 5:   // int32_data (int32 and narrower types)
      case 7: r.repeated(wire, kVarint, t.ints, read_i64, "int64_data"); break;
      case 8: r.expect(wire, kLen, "name"); t.name = r.str(); break;
      case 9: r.expect(wire, kLen, "raw_data"); raw = r.str(); has_raw = true; break;
      case 10: r.repeated(wire, kFixed64, doubles, read_f64, "double_data"); break;
      case 14: r.expect(wire, kVarint, "data_location"); t.external = r.varint() == 1; break;
      default: r.skip(wire);
    }
  }
  // Element count, refused when it overflows or when a dimension is negative.
  size_t n = 1;
  for (int64_t d : t.dims) {
    if (d < 0 || (d > 0 && n > (size_t{1} << 40) / static_cast<size_t>(d)))
      throw std::runtime_error("tensor '" + t.name + "' has bad dimensions");
    n *= static_cast<size_t>(d);
  }
  auto check_count = [&](size_t have, const char* where) {
    if (have != n)
      throw std::runtime_error("tensor '" + t.name + "' has " + std::to_string(have) + " values in " + where +
                               " for " + std::to_string(n) + " elements");
  };
  const size_t elem = t.data_type == kFloat || t.data_type == kInt32 ? 4 : t.data_type == kInt64 || t.data_type == kDouble ? 8 : 0;
  if (elem == 0 || t.external) return t;
  if (has_raw) {
    if (raw.size() != n * elem)
      throw std::runtime_error("tensor '" + t.name + "' has " + std::to_string(raw.size()) + " bytes of raw data for " +
                               std::to_string(n) + " elements of " + std::to_string(elem) + " bytes");
    const char* p = raw.data();
    for (size_t i = 0; i < n; ++i, p += elem) {
      if (t.data_type == kFloat) { uint32_t b; std::memcpy(&b, p, 4); t.floats.push_back(as_float(b)); }
      if (t.data_type == kDouble) { uint64_t b; std::memcpy(&b, p, 8); t.floats.push_back(static_cast<float>(as_double(b))); }
      if (t.data_type == kInt32) { int32_t v; std::memcpy(&v, p, 4); t.ints.push_back(v); }
      if (t.data_type == kInt64) { int64_t v; std::memcpy(&v, p, 8); t.ints.push_back(v); }
    }
  } else if (t.data_type == kDouble) {
    for (double d : doubles) t.floats.push_back(static_cast<float>(d));
  }
  if (t.data_type == kFloat || t.data_type == kDouble) check_count(t.floats.size(), "its float data");
  else check_count(t.ints.size(), "its integer data");
  t.has_data = true;
  return t;
}

AttributeProto parse_attribute(Reader r) {
  AttributeProto a;
  while (!r.done()) {
    auto [field, wire] = r.tag();
    switch (field) {
      case 1: r.expect(wire, kLen, "name"); a.name = r.str(); break;
      case 2: r.expect(wire, kFixed32, "f"); a.f = read_f32(r); break;
      case 3: r.expect(wire, kVarint, "i"); a.i = read_i64(r); break;
      case 4: r.expect(wire, kLen, "s"); a.s = r.str(); break;
      case 5: r.expect(wire, kLen, "t"); a.t.assign(1, parse_tensor(r.sub())); break;
      case 7: r.repeated(wire, kFixed32, a.floats, read_f32, "floats"); break;
      case 8: r.repeated(wire, kVarint, a.ints, read_i64, "ints"); break;
      case 20: r.expect(wire, kVarint, "type"); a.type = read_i32(r); break;
      default: r.skip(wire);
    }
  }
  return a;
}

NodeProto parse_node(Reader r) {
  NodeProto n;
  while (!r.done()) {
    auto [field, wire] = r.tag();
    switch (field) {
      case 1: r.expect(wire, kLen, "input"); n.inputs.push_back(r.str()); break;
      case 2: r.expect(wire, kLen, "output"); n.outputs.push_back(r.str()); break;
      case 3: r.expect(wire, kLen, "name"); n.name = r.str(); break;
      case 4: r.expect(wire, kLen, "op_type"); n.op_type = r.str(); break;
      case 5: r.expect(wire, kLen, "attribute"); n.attributes.push_back(parse_attribute(r.sub())); break;
      case 7: r.expect(wire, kLen, "domain"); n.domain = r.str(); break;
      default: r.skip(wire);
    }
  }
  return n;
}

void parse_shape(Reader r, ValueInfoProto& v) {
  v.has_shape = true;
  while (!r.done()) {
    auto [field, wire] = r.tag();
    if (field != 1) { r.skip(wire); continue; }
    r.expect(wire, kLen, "dim");
    Reader d = r.sub();
    int64_t value = -1;
    std::string param;
    while (!d.done()) {
      auto [df, dw] = d.tag();
      if (df == 1) { d.expect(dw, kVarint, "dim_value"); value = read_i64(d); }
      else if (df == 2) { d.expect(dw, kLen, "dim_param"); param = d.str(); }
      else d.skip(dw);
    }
    v.dims.push_back(value);
    v.dim_params.push_back(param);
  }
}

ValueInfoProto parse_value_info(Reader r) {
  ValueInfoProto v;
  while (!r.done()) {
    auto [field, wire] = r.tag();
    if (field == 1) { r.expect(wire, kLen, "name"); v.name = r.str(); continue; }
    if (field != 2) { r.skip(wire); continue; }
    r.expect(wire, kLen, "type");
    Reader type = r.sub();
    while (!type.done()) {
      auto [tf, tw] = type.tag();
      if (tf != 1) { type.skip(tw); continue; }   // only tensor types
      type.expect(tw, kLen, "tensor_type");
      Reader tt = type.sub();
      while (!tt.done()) {
        auto [f, w] = tt.tag();
        if (f == 1) { tt.expect(w, kVarint, "elem_type"); v.elem_type = read_i32(tt); }
        else if (f == 2) { tt.expect(w, kLen, "shape"); parse_shape(tt.sub(), v); }
        else tt.skip(w);
      }
    }
  }
  return v;
}

GraphProto parse_graph(Reader r) {
  GraphProto g;
  while (!r.done()) {
    auto [field, wire] = r.tag();
    switch (field) {
      case 1: r.expect(wire, kLen, "node"); g.nodes.push_back(parse_node(r.sub())); break;
      case 2: r.expect(wire, kLen, "name"); g.name = r.str(); break;
      case 5: r.expect(wire, kLen, "initializer"); g.initializers.push_back(parse_tensor(r.sub())); break;
      case 10: r.expect(wire, kLen, "doc_string"); g.doc_string = r.str(); break;
      case 11: r.expect(wire, kLen, "input"); g.inputs.push_back(parse_value_info(r.sub())); break;
      case 12: r.expect(wire, kLen, "output"); g.outputs.push_back(parse_value_info(r.sub())); break;
      default: r.skip(wire);
    }
  }
  return g;
}

std::pair<std::string, std::string> parse_pair(Reader r, const char* what) {
  std::pair<std::string, std::string> kv;
  while (!r.done()) {
    auto [field, wire] = r.tag();
    if (field == 1) { r.expect(wire, kLen, what); kv.first = r.str(); }
    else if (field == 2) { r.expect(wire, kLen, what); kv.second = r.str(); }
    else r.skip(wire);
  }
  return kv;
}

// ---- writing ----

class Writer {
 public:
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<uint8_t>(v));
  }
  void tag(uint32_t field, int wire) { varint(uint64_t(field) << 3 | static_cast<uint32_t>(wire)); }
  void int_field(uint32_t field, int64_t v) { tag(field, kVarint); varint(static_cast<uint64_t>(v)); }
  void bytes_field(uint32_t field, const void* p, size_t n) {
    tag(field, kLen);
    varint(n);
    const auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  void str(uint32_t field, const std::string& s) { bytes_field(field, s.data(), s.size()); }
  void str_if(uint32_t field, const std::string& s) { if (!s.empty()) str(field, s); }
  void msg(uint32_t field, const Writer& w) { bytes_field(field, w.out_.data(), w.out_.size()); }
  void float_field(uint32_t field, float f) {
    tag(field, kFixed32);
    uint32_t b;
    std::memcpy(&b, &f, 4);
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<uint8_t>(b >> (8 * i)));
  }
  void packed_ints(uint32_t field, const std::vector<int64_t>& v) {
    Writer w;
    for (int64_t x : v) w.varint(static_cast<uint64_t>(x));
    msg(field, w);
  }
  void packed_floats(uint32_t field, const std::vector<float>& v) {
    Writer w;
    for (float f : v) {
      uint32_t b;
      std::memcpy(&b, &f, 4);
      for (int i = 0; i < 4; ++i) w.out_.push_back(static_cast<uint8_t>(b >> (8 * i)));
    }
    msg(field, w);
  }
  std::vector<uint8_t>& bytes() { return out_; }

 private:
  std::vector<uint8_t> out_;
};

Writer write_tensor(const TensorProto& t) {
  Writer w;
  for (int64_t d : t.dims) w.int_field(1, d);
  w.int_field(2, t.data_type);
  w.str_if(8, t.name);
  if (t.data_type == kFloat) {
    std::vector<uint8_t> raw(t.floats.size() * 4);
    for (size_t i = 0; i < t.floats.size(); ++i) {
      uint32_t b;
      std::memcpy(&b, &t.floats[i], 4);
      for (int k = 0; k < 4; ++k) raw[4 * i + k] = static_cast<uint8_t>(b >> (8 * k));
    }
    w.bytes_field(9, raw.data(), raw.size());
  } else if (!t.ints.empty()) {
    w.packed_ints(7, t.ints);
  }
  return w;
}

Writer write_attribute(const AttributeProto& a) {
  Writer w;
  w.str(1, a.name);
  w.int_field(20, a.type);
  switch (a.type) {
    case 1: w.float_field(2, a.f); break;
    case 2: w.int_field(3, a.i); break;
    case 3: w.str(4, a.s); break;
    case 4: if (!a.t.empty()) w.msg(5, write_tensor(a.t[0])); break;
    case 6: w.packed_floats(7, a.floats); break;
    case 7: w.packed_ints(8, a.ints); break;
  }
  return w;
}

Writer write_value_info(const ValueInfoProto& v) {
  Writer shape;
  for (size_t i = 0; i < v.dims.size(); ++i) {
    Writer d;
    if (v.dims[i] >= 0) d.int_field(1, v.dims[i]);
    else d.str(2, i < v.dim_params.size() ? v.dim_params[i] : "");
    shape.msg(1, d);
  }
  Writer tensor;
  tensor.int_field(1, v.elem_type);
  tensor.msg(2, shape);
  Writer type;
  type.msg(1, tensor);
  Writer w;
  w.str(1, v.name);
  w.msg(2, type);
  return w;
}

}  // namespace

size_t TensorProto::numel() const {
  size_t n = 1;
  for (int64_t d : dims) n *= static_cast<size_t>(d);
  return n;
}

const AttributeProto* NodeProto::attr(const std::string& n) const {
  for (auto& a : attributes)
    if (a.name == n) return &a;
  return nullptr;
}

ModelProto parse_model(const uint8_t* data, size_t size) {
  if (size == 0) throw std::runtime_error("empty file");
  Reader r(data, data, data + size);
  ModelProto m;
  while (!r.done()) {
    auto [field, wire] = r.tag();
    switch (field) {
      case 1: r.expect(wire, kVarint, "ir_version"); m.ir_version = read_i64(r); break;
      case 2: r.expect(wire, kLen, "producer_name"); m.producer_name = r.str(); break;
      case 3: r.expect(wire, kLen, "producer_version"); m.producer_version = r.str(); break;
      case 6: r.expect(wire, kLen, "doc_string"); m.doc_string = r.str(); break;
      case 7: r.expect(wire, kLen, "graph"); m.graph = parse_graph(r.sub()); m.has_graph = true; break;
      case 8: {
        r.expect(wire, kLen, "opset_import");
        Reader o = r.sub();
        std::pair<std::string, int64_t> id{"", 0};
        while (!o.done()) {
          auto [f, w] = o.tag();
          if (f == 1) { o.expect(w, kLen, "domain"); id.first = o.str(); }
          else if (f == 2) { o.expect(w, kVarint, "version"); id.second = read_i64(o); }
          else o.skip(w);
        }
        m.opset_import.push_back(id);
        break;
      }
      case 14: r.expect(wire, kLen, "metadata_props"); m.metadata_props.push_back(parse_pair(r.sub(), "metadata_props")); break;
      default: r.skip(wire);
    }
  }
  if (!m.has_graph || m.ir_version <= 0) throw std::runtime_error("not an ONNX model (no graph or IR version)");
  return m;
}

std::vector<uint8_t> serialize_model(const ModelProto& m) {
  Writer g;
  for (auto& n : m.graph.nodes) {
    Writer w;
    for (auto& i : n.inputs) w.str(1, i);
    for (auto& o : n.outputs) w.str(2, o);
    w.str_if(3, n.name);
    w.str(4, n.op_type);
    for (auto& a : n.attributes) w.msg(5, write_attribute(a));
    w.str_if(7, n.domain);
    g.msg(1, w);
  }
  g.str_if(2, m.graph.name);
  for (auto& t : m.graph.initializers) g.msg(5, write_tensor(t));
  g.str_if(10, m.graph.doc_string);
  for (auto& v : m.graph.inputs) g.msg(11, write_value_info(v));
  for (auto& v : m.graph.outputs) g.msg(12, write_value_info(v));

  Writer w;
  w.int_field(1, m.ir_version);
  w.str_if(2, m.producer_name);
  w.str_if(3, m.producer_version);
  w.str_if(6, m.doc_string);
  for (auto& [domain, version] : m.opset_import) {
    Writer o;
    o.str_if(1, domain);
    o.int_field(2, version);
    w.msg(8, o);
  }
  for (auto& [k, v] : m.metadata_props) {
    Writer p;
    p.str(1, k);
    p.str(2, v);
    w.msg(14, p);
  }
  // The graph last: protobuf has no end marker, so a file cut between two fields would still
  // parse; with the graph last, any cut lands inside it (its length runs past the end) or
  // leaves none.
  w.msg(7, g);
  return std::move(w.bytes());
}

}  // namespace tagnet::onnx
