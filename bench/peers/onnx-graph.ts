/**
 * A minimal ONNX model writer: the subset of onnx.proto (field numbers as in onnx/onnx.proto) that
 * the benchmark graphs need, encoded with protobufjs. No onnx package, no Python: the bench builds
 * its peers' graphs itself, so what ORT runs is visible here.
 */
import protobuf from 'protobufjs';

const ONNX_PROTO_SUBSET = `
syntax = "proto2";
package onnx;
message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; FLOATS = 6; INTS = 7; STRINGS = 8; }
  optional string name = 1;
  optional AttributeType type = 20;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
}
message ValueInfoProto { optional string name = 1; optional TypeProto type = 2; }
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  repeated AttributeProto attribute = 5;
}
message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional GraphProto graph = 7;
}
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional string name = 8;
  optional bytes raw_data = 9;
}
message TensorShapeProto {
  message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; }
  oneof value { Tensor tensor_type = 1; }
}
message OperatorSetIdProto { optional string domain = 1; optional int64 version = 2; }
`;

/** TensorProto.DataType codes used here. */
export const ONNX_FLOAT = 1;
export const ONNX_INT32 = 6;
export const ONNX_INT64 = 7;
export const ONNX_BOOL = 9;

const root = protobuf.parse(ONNX_PROTO_SUBSET, { keepCase: true }).root;
const ModelProto = root.lookupType('onnx.ModelProto');

export type AttrValue = number | string | number[] | { float: number } | { floats: number[] };

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  domain?: string;
  attrs?: Record<string, AttrValue>;
}

export interface OnnxValue {
  name: string;
  elemType: number;
  /** Dimensions; strings are symbolic. */
  dims: (number | string)[];
}

export interface OnnxInitializer {
  name: string;
  dataType: number;
  dims: number[];
  /** Raw little-endian bytes. */
  raw: Uint8Array;
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  inputs: OnnxValue[];
  outputs: OnnxValue[];
  initializers?: OnnxInitializer[];
  /** Opset imports, e.g. { '': 23, 'com.microsoft': 1 }. */
  opsets: Record<string, number>;
  /** ONNX IR version (default 10, which ORT 1.30 reads; opset 23 needs IR ≥ 10 in the checker only). */
  irVersion?: number;
}

// Plain numbers are INT attributes and must be integers; floats are always explicit ({ float: x }),
// so a scale of exactly 1 cannot silently become an INT.
function attribute(name: string, v: AttrValue): Record<string, unknown> {
  if (typeof v === 'string') return { name, type: 3, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: 7, ints: v };
  if (typeof v === 'object' && 'float' in v) return { name, type: 1, f: v.float };
  if (typeof v === 'object' && 'floats' in v) return { name, type: 6, floats: v.floats };
  if (!Number.isInteger(v)) throw new Error(`bench: attribute ${name}=${v} is not an integer; write { float: ${v} }`);
  return { name, type: 2, i: v };
}

function valueInfo(v: OnnxValue): Record<string, unknown> {
  return {
    name: v.name,
    type: { tensor_type: { elem_type: v.elemType, shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
  };
}

/** Serialises a graph to ONNX ModelProto bytes. */
export function encodeModel(g: OnnxGraph): Uint8Array {
  const msg = {
    ir_version: g.irVersion ?? 10,
    producer_name: 'vlm-attention-bench',
    opset_import: Object.entries(g.opsets).map(([domain, version]) => ({ domain, version })),
    graph: {
      name: g.name,
      node: g.nodes.map((n, i) => ({
        name: `${n.op}_${i}`, op_type: n.op, domain: n.domain ?? '', input: n.inputs, output: n.outputs,
        attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
      })),
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
      initializer: (g.initializers ?? []).map((t) => ({ name: t.name, data_type: t.dataType, dims: t.dims, raw_data: t.raw })),
    },
  };
  const err = ModelProto.verify(msg);
  if (err) throw new Error(`bench: invalid ONNX model message: ${err}`);
  return ModelProto.encode(ModelProto.fromObject(msg)).finish();
}

/** Raw bytes of an int64 initializer. */
export function int64Raw(values: readonly number[]): Uint8Array {
  const a = new BigInt64Array(values.map((v) => BigInt(v)));
  return new Uint8Array(a.buffer);
}

/** Raw bytes of a float32 initializer. */
export function floatRaw(values: ArrayLike<number>): Uint8Array {
  const a = Float32Array.from(values as ArrayLike<number>);
  return new Uint8Array(a.buffer);
}
