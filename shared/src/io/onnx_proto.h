// The part of ONNX's protobuf messages (onnx.proto, IR version 8) that tagnet reads and writes,
// with a protobuf wire-format reader and writer of its own.
//
// Why not libprotobuf: the WebAssembly module has none (Emscripten has no Debian build of it),
// and the module must open .onnx files the way the command line does. One small reader, shared
// by both, keeps them in agreement; tests/test_onnx.cpp parses the same files with libonnx
// and libprotobuf and compares field by field. Fields tagnet has no use for are skipped.
//
// The reader checks every length and count against the bytes left before it trusts it, and
// throws std::runtime_error saying what was wrong and at which byte; it never reads past the
// buffer, whatever the bytes.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tagnet::onnx {

enum DataType : int32_t { kFloat = 1, kInt32 = 6, kInt64 = 7, kDouble = 11 };

// TensorProto. Float data lands in `floats`, integer data in `ints`, whatever field or raw_data
// it was stored in; `has_data` is false for a tensor whose data type tagnet does not read.
struct TensorProto {
  std::string name;
  std::vector<int64_t> dims;
  int32_t data_type = 0;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  bool has_data = false;
  bool external = false;   // data_location EXTERNAL: the data lives in another file
  size_t numel() const;
};

// AttributeProto (AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7).
struct AttributeProto {
  std::string name;
  int32_t type = 0;
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<TensorProto> t;   // at most one
};

struct NodeProto {
  std::string name, op_type, domain;
  std::vector<std::string> inputs, outputs;
  std::vector<AttributeProto> attributes;
  const AttributeProto* attr(const std::string& name) const;
};

// ValueInfoProto of a tensor: elem_type and dims; a symbolic dimension is -1 with its name in
// dim_params.
struct ValueInfoProto {
  std::string name;
  int32_t elem_type = 0;
  bool has_shape = false;
  std::vector<int64_t> dims;
  std::vector<std::string> dim_params;
};

struct GraphProto {
  std::string name, doc_string;
  std::vector<NodeProto> nodes;
  std::vector<TensorProto> initializers;
  std::vector<ValueInfoProto> inputs, outputs;
};

struct ModelProto {
  int64_t ir_version = 0;
  std::vector<std::pair<std::string, int64_t>> opset_import;   // (domain, version)
  std::string producer_name, producer_version, doc_string;
  GraphProto graph;
  bool has_graph = false;
  std::vector<std::pair<std::string, std::string>> metadata_props;
};

ModelProto parse_model(const uint8_t* data, size_t size);
std::vector<uint8_t> serialize_model(const ModelProto& model);

}  // namespace tagnet::onnx
