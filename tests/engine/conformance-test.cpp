// ONNX conformance: Debian's libonnx-testdata node tests (the reference inputs and outputs the ONNX
// project publishes for each operator), imported with import_onnx and run through the Executor.
//
// Every case dnnswarm claims is listed explicitly in kPassing, so a regression fails loudly and
// nothing is skipped silently. Every other case whose operators are all supported must be in
// kRefused (the reasons are at the end of the file) and must still fail. docs/operators.md's count
// of passing cases per operator is checked here.
//
// Operands dnnswarm needs constant at load (Reshape's shape, Slice's starts, Conv's weights, a
// BatchNormalization's statistics, ...) are graph inputs in these tests. The runner turns them into
// initializers before import, as exporters write them; activations stay inputs. See frozen_inputs().
// So Gemm and MatMul run with B (and C) as weights, the form CNN exporters write.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/operators.h"
#include "engine/executor.h"
#include "onnx/onnx_import.h"
#include "onnx/proto_util.h"  // tensor_to_proto
#include "support/doc_section.h"
#include "support/fixtures.h"

namespace fs = std::filesystem;

namespace {

// Where Debian's libonnx-testdata installs the node tests (the test script installs the package).
const char* const kDataDir = "/usr/share/libonnx-testdata/data/node";

const char* const kPassing[] = {
    "test_abs", "test_add", "test_add_bcast", "test_argmax_default_axis_example",
    "test_argmax_default_axis_example_select_last_index", "test_argmax_default_axis_random",
    "test_argmax_default_axis_random_select_last_index", "test_argmax_keepdims_example",
    "test_argmax_keepdims_example_select_last_index", "test_argmax_keepdims_random",
    "test_argmax_keepdims_random_select_last_index", "test_argmax_negative_axis_keepdims_example",
    "test_argmax_negative_axis_keepdims_example_select_last_index",
    "test_argmax_negative_axis_keepdims_random",
    "test_argmax_negative_axis_keepdims_random_select_last_index", "test_argmax_no_keepdims_example",
    "test_argmax_no_keepdims_example_select_last_index", "test_argmax_no_keepdims_random",
    "test_argmax_no_keepdims_random_select_last_index", "test_argmin_default_axis_example",
    "test_argmin_default_axis_example_select_last_index", "test_argmin_default_axis_random",
    "test_argmin_default_axis_random_select_last_index", "test_argmin_keepdims_example",
    "test_argmin_keepdims_example_select_last_index", "test_argmin_keepdims_random",
    "test_argmin_keepdims_random_select_last_index", "test_argmin_negative_axis_keepdims_example",
    "test_argmin_negative_axis_keepdims_example_select_last_index",
    "test_argmin_negative_axis_keepdims_random",
    "test_argmin_negative_axis_keepdims_random_select_last_index", "test_argmin_no_keepdims_example",
    "test_argmin_no_keepdims_example_select_last_index", "test_argmin_no_keepdims_random",
    "test_argmin_no_keepdims_random_select_last_index", "test_averagepool_1d_default",
    "test_averagepool_2d_ceil", "test_averagepool_2d_default", "test_averagepool_2d_pads",
    "test_averagepool_2d_pads_count_include_pad", "test_averagepool_2d_precomputed_pads",
    "test_averagepool_2d_precomputed_pads_count_include_pad", "test_averagepool_2d_precomputed_same_upper",
    "test_averagepool_2d_precomputed_strides", "test_averagepool_2d_same_lower",
    "test_averagepool_2d_same_upper", "test_averagepool_2d_strides", "test_averagepool_3d_default",
    "test_basic_conv_with_padding", "test_basic_conv_without_padding", "test_batchnorm_epsilon",
    "test_batchnorm_example", "test_cast_DOUBLE_to_FLOAT", "test_cast_FLOAT16_to_DOUBLE",
    "test_cast_FLOAT16_to_FLOAT", "test_cast_FLOAT_to_DOUBLE", "test_castlike_DOUBLE_to_FLOAT_expanded",
    "test_castlike_FLOAT16_to_DOUBLE_expanded", "test_castlike_FLOAT16_to_FLOAT_expanded",
    "test_castlike_FLOAT_to_DOUBLE_expanded", "test_celu_expanded", "test_clip", "test_clip_default_inbounds",
    "test_clip_default_max", "test_clip_default_min", "test_clip_example", "test_clip_inbounds",
    "test_clip_outbounds", "test_clip_splitbounds", "test_concat_1d_axis_0", "test_concat_1d_axis_negative_1",
    "test_concat_2d_axis_0", "test_concat_2d_axis_1", "test_concat_2d_axis_negative_1",
    "test_concat_2d_axis_negative_2", "test_concat_3d_axis_0", "test_concat_3d_axis_1",
    "test_concat_3d_axis_2", "test_concat_3d_axis_negative_1", "test_concat_3d_axis_negative_2",
    "test_concat_3d_axis_negative_3", "test_constant_pad", "test_conv_with_autopad_same",
    "test_conv_with_strides_and_asymmetric_padding", "test_conv_with_strides_no_padding",
    "test_conv_with_strides_padding", "test_depthtospace_crd_mode", "test_depthtospace_crd_mode_example",
    "test_depthtospace_dcr_mode", "test_depthtospace_example", "test_div", "test_div_bcast",
    "test_div_example", "test_dropout_default", "test_dropout_default_old", "test_dropout_default_ratio",
    "test_dropout_random_old", "test_elu", "test_elu_default", "test_elu_example", "test_erf", "test_exp",
    "test_exp_example", "test_expand_dim_changed", "test_expand_dim_unchanged", "test_flatten_axis0",
    "test_flatten_axis1", "test_flatten_axis2", "test_flatten_axis3", "test_flatten_default_axis",
    "test_flatten_negative_axis1", "test_flatten_negative_axis2", "test_flatten_negative_axis3",
    "test_flatten_negative_axis4", "test_gemm_all_attributes", "test_gemm_alpha", "test_gemm_beta",
    "test_gemm_default_matrix_bias", "test_gemm_default_no_bias", "test_gemm_default_scalar_bias",
    "test_gemm_default_single_elem_vector_bias", "test_gemm_default_vector_bias",
    "test_gemm_default_zero_bias", "test_gemm_transposeA", "test_gemm_transposeB", "test_globalaveragepool",
    "test_globalaveragepool_precomputed", "test_globalmaxpool", "test_globalmaxpool_precomputed",
    "test_greater", "test_greater_bcast", "test_greater_equal", "test_greater_equal_bcast",
    "test_greater_equal_bcast_expanded", "test_greater_equal_expanded", "test_hardsigmoid",
    "test_hardsigmoid_default", "test_hardsigmoid_example", "test_hardswish", "test_hardswish_expanded",
    "test_identity", "test_instancenorm_epsilon", "test_instancenorm_example",
    "test_layer_normalization_2d_axis0", "test_layer_normalization_2d_axis1",
    "test_layer_normalization_2d_axis_negative_1", "test_layer_normalization_2d_axis_negative_2",
    "test_layer_normalization_3d_axis0_epsilon", "test_layer_normalization_3d_axis1_epsilon",
    "test_layer_normalization_3d_axis2_epsilon", "test_layer_normalization_3d_axis_negative_1_epsilon",
    "test_layer_normalization_3d_axis_negative_2_epsilon",
    "test_layer_normalization_3d_axis_negative_3_epsilon", "test_layer_normalization_4d_axis0",
    "test_layer_normalization_4d_axis1", "test_layer_normalization_4d_axis2",
    "test_layer_normalization_4d_axis3", "test_layer_normalization_4d_axis_negative_1",
    "test_layer_normalization_4d_axis_negative_2", "test_layer_normalization_4d_axis_negative_3",
    "test_layer_normalization_4d_axis_negative_4", "test_layer_normalization_default_axis", "test_leakyrelu",
    "test_leakyrelu_default", "test_leakyrelu_example", "test_less", "test_less_bcast", "test_less_equal",
    "test_less_equal_bcast", "test_less_equal_bcast_expanded", "test_less_equal_expanded",
    "test_logsoftmax_axis_0", "test_logsoftmax_axis_1", "test_logsoftmax_axis_2",
    "test_logsoftmax_default_axis", "test_logsoftmax_example_1", "test_logsoftmax_large_number",
    "test_logsoftmax_negative_axis", "test_lrn", "test_lrn_default", "test_matmul_2d", "test_matmul_3d",
    "test_matmul_4d", "test_max_example", "test_max_float16", "test_max_float32", "test_max_float64",
    "test_max_one_input", "test_max_two_inputs", "test_maxpool_1d_default", "test_maxpool_2d_ceil",
    "test_maxpool_2d_default", "test_maxpool_2d_dilations", "test_maxpool_2d_pads",
    "test_maxpool_2d_precomputed_pads", "test_maxpool_2d_precomputed_same_upper",
    "test_maxpool_2d_precomputed_strides", "test_maxpool_2d_same_lower", "test_maxpool_2d_same_upper",
    "test_maxpool_2d_strides", "test_maxpool_3d_default", "test_mean_example", "test_mean_one_input",
    "test_mean_two_inputs", "test_min_example", "test_min_float16", "test_min_float32", "test_min_float64",
    "test_min_one_input", "test_min_two_inputs", "test_mul", "test_mul_bcast", "test_mul_example",
    "test_mvn_expanded", "test_neg", "test_neg_example", "test_pow", "test_pow_bcast_array",
    "test_pow_bcast_scalar", "test_pow_example", "test_prelu_broadcast", "test_prelu_example",
    "test_reciprocal", "test_reciprocal_example", "test_reduce_l1_default_axes_keepdims_example",
    "test_reduce_l1_default_axes_keepdims_random", "test_reduce_l1_do_not_keepdims_example",
    "test_reduce_l1_do_not_keepdims_random", "test_reduce_l1_keep_dims_example",
    "test_reduce_l1_keep_dims_random", "test_reduce_l1_negative_axes_keep_dims_example",
    "test_reduce_l1_negative_axes_keep_dims_random", "test_reduce_l2_default_axes_keepdims_example",
    "test_reduce_l2_default_axes_keepdims_random", "test_reduce_l2_do_not_keepdims_example",
    "test_reduce_l2_do_not_keepdims_random", "test_reduce_l2_keep_dims_example",
    "test_reduce_l2_keep_dims_random", "test_reduce_l2_negative_axes_keep_dims_example",
    "test_reduce_l2_negative_axes_keep_dims_random", "test_reduce_max_default_axes_keepdim_example",
    "test_reduce_max_default_axes_keepdims_random", "test_reduce_max_do_not_keepdims_example",
    "test_reduce_max_do_not_keepdims_random", "test_reduce_max_keepdims_example",
    "test_reduce_max_keepdims_random", "test_reduce_max_negative_axes_keepdims_example",
    "test_reduce_max_negative_axes_keepdims_random", "test_reduce_mean_default_axes_keepdims_example",
    "test_reduce_mean_default_axes_keepdims_random", "test_reduce_mean_do_not_keepdims_example",
    "test_reduce_mean_do_not_keepdims_random", "test_reduce_mean_keepdims_example",
    "test_reduce_mean_keepdims_random", "test_reduce_mean_negative_axes_keepdims_example",
    "test_reduce_mean_negative_axes_keepdims_random", "test_reduce_min_default_axes_keepdims_example",
    "test_reduce_min_default_axes_keepdims_random", "test_reduce_min_do_not_keepdims_example",
    "test_reduce_min_do_not_keepdims_random", "test_reduce_min_keepdims_example",
    "test_reduce_min_keepdims_random", "test_reduce_min_negative_axes_keepdims_example",
    "test_reduce_min_negative_axes_keepdims_random", "test_reduce_prod_default_axes_keepdims_example",
    "test_reduce_prod_default_axes_keepdims_random", "test_reduce_prod_do_not_keepdims_example",
    "test_reduce_prod_do_not_keepdims_random", "test_reduce_prod_keepdims_example",
    "test_reduce_prod_keepdims_random", "test_reduce_prod_negative_axes_keepdims_example",
    "test_reduce_prod_negative_axes_keepdims_random", "test_reduce_sum_default_axes_keepdims_example",
    "test_reduce_sum_default_axes_keepdims_random", "test_reduce_sum_do_not_keepdims_example",
    "test_reduce_sum_do_not_keepdims_random", "test_reduce_sum_empty_axes_input_noop_example",
    "test_reduce_sum_empty_axes_input_noop_random", "test_reduce_sum_keepdims_example",
    "test_reduce_sum_keepdims_random", "test_reduce_sum_negative_axes_keepdims_example",
    "test_reduce_sum_negative_axes_keepdims_random", "test_reduce_sum_square_default_axes_keepdims_example",
    "test_reduce_sum_square_default_axes_keepdims_random", "test_reduce_sum_square_do_not_keepdims_example",
    "test_reduce_sum_square_do_not_keepdims_random", "test_reduce_sum_square_keepdims_example",
    "test_reduce_sum_square_keepdims_random", "test_reduce_sum_square_negative_axes_keepdims_example",
    "test_reduce_sum_square_negative_axes_keepdims_random", "test_relu", "test_reshape_allowzero_reordered",
    "test_reshape_extended_dims", "test_reshape_negative_dim", "test_reshape_negative_extended_dims",
    "test_reshape_one_dim", "test_reshape_reduced_dims", "test_reshape_reordered_all_dims",
    "test_reshape_reordered_last_dims", "test_reshape_zero_and_negative_dim", "test_reshape_zero_dim",
    "test_resize_downsample_scales_cubic", "test_resize_downsample_scales_cubic_A_n0p5_exclude_outside",
    "test_resize_downsample_scales_cubic_align_corners", "test_resize_downsample_scales_linear",
    "test_resize_downsample_scales_linear_align_corners", "test_resize_downsample_scales_nearest",
    "test_resize_downsample_sizes_cubic", "test_resize_downsample_sizes_linear_pytorch_half_pixel",
    "test_resize_downsample_sizes_nearest", "test_resize_downsample_sizes_nearest_tf_half_pixel_for_nn",
    "test_resize_tf_crop_and_resize", "test_resize_upsample_scales_cubic",
    "test_resize_upsample_scales_cubic_A_n0p5_exclude_outside",
    "test_resize_upsample_scales_cubic_align_corners", "test_resize_upsample_scales_cubic_asymmetric",
    "test_resize_upsample_scales_linear", "test_resize_upsample_scales_linear_align_corners",
    "test_resize_upsample_scales_nearest", "test_resize_upsample_sizes_cubic",
    "test_resize_upsample_sizes_nearest", "test_resize_upsample_sizes_nearest_ceil_half_pixel",
    "test_resize_upsample_sizes_nearest_floor_align_corners",
    "test_resize_upsample_sizes_nearest_round_prefer_ceil_asymmetric", "test_selu", "test_selu_default",
    "test_selu_example", "test_sigmoid", "test_sigmoid_example", "test_slice", "test_slice_default_axes",
    "test_slice_default_steps", "test_slice_end_out_of_bounds", "test_slice_neg", "test_slice_neg_steps",
    "test_slice_negative_axes", "test_slice_start_out_of_bounds", "test_softmax_axis_0",
    "test_softmax_axis_0_expanded", "test_softmax_axis_1", "test_softmax_axis_1_expanded",
    "test_softmax_axis_2", "test_softmax_axis_2_expanded", "test_softmax_default_axis",
    "test_softmax_default_axis_expanded", "test_softmax_example", "test_softmax_example_expanded",
    "test_softmax_large_number", "test_softmax_large_number_expanded", "test_softmax_negative_axis",
    "test_softmax_negative_axis_expanded", "test_softplus", "test_softplus_example", "test_softsign",
    "test_softsign_example", "test_spacetodepth", "test_spacetodepth_example", "test_split_equal_parts_1d",
    "test_split_equal_parts_2d", "test_split_equal_parts_default_axis", "test_split_variable_parts_1d",
    "test_split_variable_parts_2d", "test_split_variable_parts_default_axis", "test_split_zero_size_splits",
    "test_sqrt", "test_sqrt_example", "test_squeeze", "test_squeeze_negative_axes", "test_sub",
    "test_sub_bcast", "test_sub_example", "test_sum_example", "test_sum_one_input", "test_sum_two_inputs",
    "test_tanh", "test_tanh_example", "test_tile", "test_tile_precomputed",
    "test_transpose_all_permutations_0", "test_transpose_all_permutations_1",
    "test_transpose_all_permutations_2", "test_transpose_all_permutations_3",
    "test_transpose_all_permutations_4", "test_transpose_all_permutations_5", "test_transpose_default",
    "test_unsqueeze_axis_0", "test_unsqueeze_axis_1", "test_unsqueeze_axis_2", "test_unsqueeze_axis_3",
    "test_unsqueeze_negative_axes", "test_unsqueeze_three_axes", "test_unsqueeze_two_axes",
    "test_unsqueeze_unsorted_axes", "test_upsample_nearest",
};

// Operators that take several activations: their inputs stay run-time inputs. Every other operator's
// inputs after the first are operands (weights, shapes, axes, statistics) and become initializers.
const std::set<std::string> kMultiActivationOps = {"Add", "Sub", "Mul", "Div", "Concat"};
// Operators that also take integer and bool activations (masks): their inputs stay inputs whatever
// their type.
const std::set<std::string> kAnyTypeOps = {"Cast", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or",
                                           "Xor", "Not", "Where", "Pow", "Min", "Max", "Sum", "Mean"};

// Operators whose schema is unchanged from the given version through opset 18. A case written at an
// opset older than 7 (the oldest the importer reads) that uses only these means the same at opset 7.
const std::map<std::string, int> kUnchangedSince = {{"GlobalAveragePool", 1}, {"GlobalMaxPool", 1}, {"HardSigmoid", 6},
                                                    {"Elu", 6}, {"Selu", 6}, {"Softplus", 1}, {"Softsign", 1},
                                                    {"InstanceNormalization", 6}};

void lift_old_opset(onnx::ModelProto& m) {
  for (auto& o : *m.mutable_opset_import()) {
    if (!(o.domain().empty() || o.domain() == "ai.onnx") || o.version() >= 7) continue;
    for (auto& n : m.graph().node()) {
      auto it = kUnchangedSince.find(n.op_type());
      if (it == kUnchangedSince.end() || it->second > o.version()) return;
    }
    o.set_version(7);
  }
}

template <class Proto>
Proto read_proto(const fs::path& path) {
  Proto p;
  std::ifstream f(path, std::ios::binary);
  if (!f || !p.ParseFromIstream(&f)) throw std::runtime_error("cannot parse " + path.string());
  return p;
}

// Names of the graph inputs the runner turns into initializers.
std::set<std::string> frozen_inputs(const onnx::GraphProto& g) {
  std::set<std::string> frozen, any_type;
  for (auto& n : g.node())
    if (kAnyTypeOps.count(n.op_type())) any_type.insert(n.input().begin(), n.input().end());
  for (auto& in : g.input()) {
    const auto& type = in.type();
    if (type.has_tensor_type() && type.tensor_type().elem_type() != onnx::TensorProto::FLOAT && !any_type.count(in.name()))
      frozen.insert(in.name());
  }
  for (auto& n : g.node()) {
    if (kMultiActivationOps.count(n.op_type()) || kAnyTypeOps.count(n.op_type())) continue;
    for (int i = 1; i < n.input_size(); ++i) frozen.insert(n.input(i));
  }
  return frozen;
}

struct Outcome {
  bool passed = false;
  std::string message;  // why not, or a summary
};

// The largest |y - ref| over the allowed tolerance 1e-4 * max|ref| + 1e-5, or a shape mismatch.
std::string compare(const dnn::Tensor& y, const dnn::Tensor& ref, const std::string& name) {
  if (y.shape() != ref.shape())
    return "output '" + name + "': shape " + dnn::to_string(y.shape()) + ", expected " + dnn::to_string(ref.shape());
  if (ref.dtype() == dnn::DType::i64) {  // integers and bool masks: exactly
    if (y.dtype() != dnn::DType::i64) return "output '" + name + "' is not an integer tensor";
    for (int64_t i = 0; i < ref.numel(); ++i)
      if (y.i64()[i] != ref.i64()[i])
        return "output '" + name + "'[" + std::to_string(i) + "] = " + std::to_string(y.i64()[i]) + ", expected " +
               std::to_string(ref.i64()[i]);
    return "";
  }
  if (y.dtype() != dnn::DType::f32) return "output '" + name + "' is not float";
  float peak = 0.f, worst = 0.f;
  int64_t at = -1;
  for (int64_t i = 0; i < ref.numel(); ++i) peak = std::max(peak, std::fabs(ref.f32()[i]));
  const float tol = 1e-4f * peak + 1e-5f;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const float a = y.f32()[i], b = ref.f32()[i];
    const float err = (std::isinf(a) && a == b) ? 0.f : std::fabs(a - b);
    if (!(err <= worst)) worst = err, at = i;  // catches NaN
  }
  if (at >= 0 && !(worst <= tol)) {
    std::ostringstream o;
    o << "output '" << name << "'[" << at << "] = " << y.f32()[at] << ", expected " << ref.f32()[at]
      << " (|err| " << worst << " > " << tol << ")";
    return o.str();
  }
  return "";
}

// Imports one test data set of `name` with its operands frozen, runs it and compares every output.
Outcome run_data_set(const std::string& name, const onnx::ModelProto& model, const fs::path& set_dir) {
  onnx::ModelProto m = model;
  lift_old_opset(m);
  auto* g = m.mutable_graph();
  const std::set<std::string> frozen = frozen_inputs(*g);
  std::set<std::string> initializers;
  for (auto& t : g->initializer()) initializers.insert(t.name());

  const fs::path dir = fs::temp_directory_path() / ("dnn-conformance-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path path = dir / (name + ".onnx");
  Outcome r;
  try {
    // Inputs in graph order (skipping those with initializers), as input_<k>.pb files.
    std::map<std::string, dnn::Tensor> feeds;
    int k = 0;
    google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> kept;
    for (auto& in : g->input()) {
      if (initializers.count(in.name())) continue;
      const fs::path file = set_dir / ("input_" + std::to_string(k++) + ".pb");
      if (!fs::exists(file)) continue;  // an omitted optional input
      auto t = read_proto<onnx::TensorProto>(file);
      t.set_name(in.name());
      if (frozen.count(in.name())) {
        *g->add_initializer() = t;
      } else {
        feeds[in.name()] = dnn::tensor_from_proto(t, file.string());
        *kept.Add() = in;
      }
    }
    g->mutable_input()->Swap(&kept);

    {
      std::ofstream f(path, std::ios::binary);
      m.SerializeToOstream(&f);
    }
    dnn::Graph graph = dnn::import_onnx(path.string());
    dnn::Executor ex(graph);
    std::vector<dnn::Tensor> inputs;
    for (auto& v : ex.inputs()) {
      if (!feeds.count(v.name)) throw std::runtime_error("the executor wants input '" + v.name + "', not in the test");
      inputs.push_back(feeds[v.name]);
    }
    auto outputs = ex.run(inputs);
    for (int i = 0; i < model.graph().output_size(); ++i) {
      const std::string& out_name = model.graph().output(i).name();
      auto t = read_proto<onnx::TensorProto>(set_dir / ("output_" + std::to_string(i) + ".pb"));
      dnn::Tensor ref = dnn::tensor_from_proto(t, out_name);
      auto it = std::find(ex.outputs().begin(), ex.outputs().end(), out_name);
      if (it == ex.outputs().end()) throw std::runtime_error("output '" + out_name + "' is not produced");
      std::string err = compare(outputs[it - ex.outputs().begin()], ref, out_name);
      if (!err.empty()) throw std::runtime_error(err);
    }
    r.passed = true;
  } catch (const std::exception& e) {
    r.message = set_dir.filename().string() + ": " + e.what();
  }
  std::error_code ignored;
  fs::remove(path, ignored);
  fs::remove(dir, ignored);  // only once empty
  return r;
}

Outcome run_case(const std::string& name) {
  const fs::path dir = fs::path(kDataDir) / name;
  if (!fs::exists(dir / "model.onnx")) return {false, "missing " + (dir / "model.onnx").string()};
  onnx::ModelProto model;
  try {
    model = read_proto<onnx::ModelProto>(dir / "model.onnx");
  } catch (const std::exception& e) {
    return {false, e.what()};
  }
  int sets = 0;
  for (auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind("test_data_set_", 0) != 0) continue;
    Outcome r = run_data_set(name, model, entry.path());
    if (!r.passed) return r;
    ++sets;
  }
  if (sets == 0) return {false, "no test_data_set_* in " + dir.string()};
  return {true, std::to_string(sets) + " data set(s)"};
}

// The operators of a case's graph, and whether dnnswarm registers all of them.
bool uses_supported_ops(const fs::path& dir, std::string& ops) {
  onnx::ModelProto model;
  try {
    model = read_proto<onnx::ModelProto>(dir / "model.onnx");
  } catch (const std::exception&) {
    return false;
  }
  // Sequence and optional values are outside dnnswarm's tensor model.
  bool all = true;
  for (auto* values : {&model.graph().input(), &model.graph().output()})
    for (auto& v : *values) all &= v.type().has_tensor_type();
  std::set<std::string> seen;
  for (auto& n : model.graph().node()) {
    // Constant nodes are folded at import.
    if (n.op_type() != "Constant") all &= dnn::is_supported_op(n.op_type());
    seen.insert(n.op_type());
  }
  for (auto& op : seen) ops += (ops.empty() ? "" : ",") + op;
  return all;
}

class Conformance : public testing::TestWithParam<const char*> {};

TEST_P(Conformance, MatchesReference) {
  Outcome r = run_case(GetParam());
  EXPECT_TRUE(r.passed) << GetParam() << ": " << r.message;
}

INSTANTIATE_TEST_SUITE_P(Node, Conformance, testing::ValuesIn(kPassing),
                         [](const testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

TEST(ConformanceData, IsInstalled) {
  ASSERT_TRUE(fs::is_directory(kDataDir)) << kDataDir << " is missing: apt-get install -y libonnx-testdata";
  ASSERT_TRUE(fs::exists(fs::path(kDataDir) / "test_relu" / "model.onnx"));
}

// Cases of supported operators that fail on purpose (see the end of the file for why).
const char* const kRefused[] = {
    "test_add_uint8", "test_and2d", "test_and3d", "test_and4d", "test_and_bcast3v1d", "test_and_bcast3v2d",
    "test_and_bcast4v2d", "test_and_bcast4v3d", "test_and_bcast4v4d", "test_batchnorm_epsilon_training_mode",
    "test_batchnorm_example_training_mode", "test_cast_BFLOAT16_to_FLOAT", "test_cast_DOUBLE_to_FLOAT16",
    "test_cast_FLOAT_to_BFLOAT16", "test_cast_FLOAT_to_FLOAT16", "test_cast_FLOAT_to_STRING",
    "test_cast_STRING_to_FLOAT", "test_castlike_BFLOAT16_to_FLOAT_expanded",
    "test_castlike_DOUBLE_to_FLOAT16_expanded", "test_castlike_FLOAT_to_BFLOAT16_expanded",
    "test_castlike_FLOAT_to_FLOAT16_expanded", "test_castlike_FLOAT_to_STRING_expanded",
    "test_castlike_STRING_to_FLOAT_expanded", "test_clip_default_int8_inbounds", "test_clip_default_int8_max",
    "test_clip_default_int8_min", "test_constant", "test_div_uint8", "test_dropout_default_mask",
    "test_dropout_default_mask_ratio", "test_edge_pad", "test_equal", "test_equal_bcast", "test_max_int16",
    "test_max_int32", "test_max_int64", "test_max_int8", "test_max_uint16", "test_max_uint32",
    "test_max_uint64", "test_max_uint8", "test_maxpool_2d_uint8",
    "test_maxpool_with_argmax_2d_precomputed_pads", "test_maxpool_with_argmax_2d_precomputed_strides",
    "test_min_int16", "test_min_int32", "test_min_int64", "test_min_int8", "test_min_uint16",
    "test_min_uint32", "test_min_uint64", "test_min_uint8", "test_mul_uint8", "test_not_2d", "test_not_3d",
    "test_not_4d", "test_or2d", "test_or3d", "test_or4d", "test_or_bcast3v1d", "test_or_bcast3v2d",
    "test_or_bcast4v2d", "test_or_bcast4v3d", "test_or_bcast4v4d", "test_pow_types_float",
    "test_pow_types_float32_int32", "test_pow_types_float32_int64", "test_pow_types_float32_uint32",
    "test_pow_types_float32_uint64", "test_pow_types_int", "test_pow_types_int32_float32",
    "test_pow_types_int32_int32", "test_pow_types_int64_float32", "test_pow_types_int64_int64",
    "test_reflect_pad", "test_sub_uint8", "test_training_dropout", "test_training_dropout_default",
    "test_training_dropout_default_mask", "test_training_dropout_mask", "test_training_dropout_zero_ratio",
    "test_training_dropout_zero_ratio_mask", "test_where_example", "test_where_long_example", "test_xor2d",
    "test_xor3d", "test_xor4d", "test_xor_bcast3v1d", "test_xor_bcast3v2d", "test_xor_bcast4v2d",
    "test_xor_bcast4v3d", "test_xor_bcast4v4d",
};

std::vector<std::string> all_cases() {
  std::vector<std::string> names;
  for (auto& entry : fs::directory_iterator(kDataDir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Every case whose operators are all supported is either listed as passing or refused on purpose,
// and a refused case still fails (when one starts passing, move it to kPassing).
TEST(ConformanceData, EveryCaseOfSupportedOperatorsIsAccountedFor) {
  ASSERT_TRUE(fs::is_directory(kDataDir));
  std::set<std::string> listed(std::begin(kPassing), std::end(kPassing)), refused(std::begin(kRefused), std::end(kRefused));
  int supported = 0;
  for (auto& name : all_cases()) {
    std::string ops;
    if (!uses_supported_ops(fs::path(kDataDir) / name, ops)) continue;
    ++supported;
    if (listed.count(name)) continue;
    Outcome r = run_case(name);
    EXPECT_TRUE(refused.count(name)) << name << " [" << ops << "] is neither listed nor refused: "
                                     << (r.passed ? "it passes: add it to kPassing" : r.message);
    if (refused.count(name)) EXPECT_FALSE(r.passed) << name << " passes now: move it to kPassing";
  }
  std::printf("%d case(s) of supported operators: %zu pass, %zu refused\n", supported, listed.size(), refused.size());
}

// docs/operators.md's count of passing cases per operator, from kPassing (each case run above).
TEST(ConformanceData, CountsPerOperatorDocumented) {
  ASSERT_TRUE(fs::is_directory(kDataDir));
  std::map<std::string, int> passing, total;
  const std::set<std::string> listed(std::begin(kPassing), std::end(kPassing));
  for (auto& name : all_cases()) {
    onnx::ModelProto model;
    try {
      model = read_proto<onnx::ModelProto>(fs::path(kDataDir) / name / "model.onnx");
    } catch (const std::exception&) {
      continue;
    }
    std::set<std::string> ops;
    for (auto& n : model.graph().node()) ops.insert(n.op_type());
    for (auto& op : ops) {
      ++total[op];
      if (listed.count(name)) ++passing[op];
    }
  }
  std::ostringstream o;
  o << "| Operator | Cases passing | Cases using it |\n|---|---|---|\n";
  for (auto& op : dnn::operators())
    if (total.count(op.name)) o << "| " << op.name << " | " << passing[op.name] << " | " << total[op.name] << " |\n";
  o << "\n" << listed.size() << " of " << all_cases().size() << " cases pass.\n";
  EXPECT_TRUE(dnn::test::doc_section_matches(dnn::test::source("docs/operators.md"), "conformance-counts", o.str()));
}

// Graphs written the way PyTorch exports x.expand(-1, 3, -1) and x.repeat(1, 2, 1) at opset 13: the
// -1 entries of expand's shape pass through Where(Equal(shape, -1), ConstantOfShape(Shape(shape)), shape),
// which the importer folds, so Expand and Tile run on the activation. Checked by hand-computed values.
onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, std::vector<std::string> in, const std::string& out) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(out + "_node");
  for (auto& i : in) n->add_input(i);
  n->add_output(out);
  return n;
}

void add_value(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list, const std::string& name, dnn::Shape shape) {
  auto* v = list->Add();
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : shape) t->mutable_shape()->add_dim()->set_dim_value(d);
}

TEST(ExportedGraphs, ExpandAndRepeatAsPyTorchWritesThem) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("expand_repeat");
  add_value(g->mutable_input(), "x", {2, 1, 4});
  add_value(g->mutable_output(), "y", {2, 3, 8});
  *g->add_initializer() = dnn::tensor_to_proto(dnn::Tensor::from_i64({3}, {-1, 3, -1}), "sizes");
  *g->add_initializer() = dnn::tensor_to_proto(dnn::Tensor::from_i64({}, {-1}), "minus_one");
  *g->add_initializer() = dnn::tensor_to_proto(dnn::Tensor::from_i64({3}, {1, 1, 2}), "repeats");
  *g->add_initializer() = dnn::tensor_to_proto(dnn::Tensor::from_f32({}, {2.f}), "two");
  add_node(g, "Shape", {"sizes"}, "sizes_shape");
  auto* ones = add_node(g, "ConstantOfShape", {"sizes_shape"}, "ones");
  auto* value = ones->add_attribute();
  value->set_name("value");
  value->set_type(onnx::AttributeProto::TENSOR);
  *value->mutable_t() = dnn::tensor_to_proto(dnn::Tensor::from_i64({1}, {1}), "one");
  add_node(g, "Equal", {"sizes", "minus_one"}, "is_minus_one");
  add_node(g, "Where", {"is_minus_one", "ones", "sizes"}, "target");
  add_node(g, "Expand", {"x", "target"}, "expanded");
  add_node(g, "Tile", {"expanded", "repeats"}, "repeated");
  add_node(g, "Mul", {"repeated", "two"}, "y");

  const fs::path path = fs::temp_directory_path() / ("dnn-expand-" + std::to_string(getpid()) + ".onnx");
  {
    std::ofstream f(path, std::ios::binary);
    ASSERT_TRUE(m.SerializeToOstream(&f));
  }
  dnn::Graph graph = dnn::import_onnx(path.string());
  fs::remove(path);
  std::vector<float> xv(8);
  for (int i = 0; i < 8; ++i) xv[i] = float(i + 1);  // x[b][0][j] = 4b + j + 1
  dnn::Executor ex(graph);
  auto out = ex.run({dnn::Tensor::from_f32({2, 1, 4}, xv)});
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].shape(), (dnn::Shape{2, 3, 8}));
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 8; ++k)  // y[b][i][k] = 2 * x[b][0][k mod 4]
        ASSERT_EQ(out[0].f32()[(b * 3 + i) * 8 + k], 2.f * float(4 * b + k % 4 + 1)) << b << "," << i << "," << k;
}

}  // namespace

// Cases of supported operators left out of kPassing, and why:
// - test_{add,sub,mul,div}_uint8, test_clip_default_int8_*, test_maxpool_2d_uint8, test_edge_pad,
//   test_reflect_pad: integer activations (uint8, int8, int32); dnnswarm computes in float32.
//   Edge and reflect padding are covered by tests/layers/pad-test.cpp instead.
// - test_batchnorm_*_training_mode, test_training_dropout*: training mode (inference engine).
// - test_dropout_default_mask*, test_maxpool_with_argmax_*: bool mask / int64 Indices outputs.
// - test_constant: a graph with no run-time work (its output is a constant).
// - test_{and,or,xor,not}*, test_equal*, test_where_*, test_{min,max}_<integer type>, test_pow_types_*
//   with integer inputs: graph inputs are float32 (the executor's and the wire's contract); masks
//   computed inside a graph from float activations run, as test_less_equal_expanded shows.
//   test_not_* are also written at opset 1.
// - test_cast*/test_castlike* to FLOAT16, BFLOAT16 or STRING, from STRING or a BFLOAT16 graph input:
//   a run-time Cast reaches float32, double (as float32), integers and bool only.
