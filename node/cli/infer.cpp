// dnnswarm infer: the swarm's client and load generator. Sends the frames of a .npy file as requests
// to a model served by `dnnswarm node`s, collects the results in order, and prints one JSON line with
// latency percentiles (from submission, window wait included), throughput, failures and a
// per-stage latency breakdown. Only answered requests are scored against --labels. Exit status 3
// when any request failed or timed out.
#include <algorithm>
#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "cli/common.h"
#include "core/error.h"
#include "core/npy.h"
#include "swarm/client.h"

namespace dnn::cli {

namespace {

Tensor rows(const Tensor& t, int64_t begin, int64_t count) {
  Shape s = t.shape();
  const int64_t row = t.numel() / s[0];
  s[0] = count;
  Tensor out(s);
  std::memcpy(out.f32(), t.f32() + begin * row, out.bytes());
  return out;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

}  // namespace

int cmd_infer(int argc, char** argv) {
  ClientOptions co;
  BrokerFlags broker;
  std::string input, output, labels;
  int64_t count = 0, per_request = 1;
  double rate = 0;
  po::options_description opts("options");
  opts.add_options()
      ("model,m", po::value(&co.model)->required(), "model name (as in the plan the nodes serve)")
      ("input,i", po::value(&input)->required(), "input frames (.npy, float32, first dimension = frames)")
      ("output,o", po::value(&output), "write the outputs here (.npy, in request order)")
      ("count,n", po::value(&count)->default_value(0), "requests to send (0 = one per frame group; cycles the input)")
      ("frames-per-request", po::value(&per_request)->default_value(1), "frames in one request (its batch)")
      ("rate,r", po::value(&rate)->default_value(0), "requests per second (0 = as fast as the window allows)")
      ("window,w", po::value(&co.window)->default_value(co.window), "requests in flight at most")
      ("timeout-ms", po::value(&co.timeout_ms)->default_value(co.timeout_ms),
       "per request deadline, from submission")
      ("ack-timeout-ms", po::value(&co.ack_timeout_ms)->default_value(co.ack_timeout_ms),
       "re-send a request no node has taken on for this long")
      ("max-attempts", po::value(&co.max_attempts)->default_value(co.max_attempts), "sends of one request at most")
      ("prefix", po::value(&co.prefix)->default_value(co.prefix), "MQTT topic prefix")
      ("client-id", po::value(&co.client_id), "MQTT client id (default client-<pid>-<random>)")
      ("labels,l", po::value(&labels), "int64 .npy of class labels: add top-1 accuracy to the report");
  add_broker_options(opts, broker);
  po::variables_map vm;
  if (!parse(argc, argv, "--model NAME --input x.npy [--output y.npy] [--count N --rate R] [options]", opts, vm))
    return 0;
  co.broker = resolve_broker(broker);

  Tensor x = read_npy(input);
  if (x.dtype() != DType::f32 || x.rank() < 1) throw ShapeError(input + ": expected float32 frames");
  const int64_t frames = x.dim(0);
  if (per_request < 1 || frames % per_request != 0)
    throw Error("--frames-per-request " + std::to_string(per_request) + " must divide the " + std::to_string(frames) +
                " frames of " + input);
  if (count <= 0) count = frames / per_request;

  InferClient client(co);
  std::deque<std::future<InferResult>> futures;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t r = 0; r < count; ++r) {
    if (rate > 0) std::this_thread::sleep_until(t0 + std::chrono::duration<double>(r / rate));
    futures.push_back(client.submit({{"", rows(x, (r * per_request) % frames, per_request)}}));
  }
  std::vector<InferResult> results;
  for (auto& f : futures) results.push_back(f.get());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Outputs in request order; failed requests leave zeros.
  std::vector<double> latency;
  int64_t ok = 0, timed_out = 0, errors = 0;
  std::map<int, std::pair<double, double>> stage_ms;   // stage -> sum of compute, queue ms
  std::map<int, int> stage_hops;
  Shape out_shape;
  for (const auto& r : results) {
    if (r.ok()) {
      ++ok;
      latency.push_back(r.latency_ms);
      if (out_shape.empty() && !r.outputs.empty()) out_shape = r.outputs[0].tensor.shape();
      for (const auto& h : r.hops) {
        stage_ms[h.stage].first += (h.finished_us - h.started_us) / 1000.0;
        stage_ms[h.stage].second += (h.started_us - h.received_us) / 1000.0;
        ++stage_hops[h.stage];
      }
    } else {
      r.timed_out ? ++timed_out : ++errors;
      if (timed_out + errors <= 5) std::cerr << "infer: request " << r.request_id << ": " << r.error << "\n";
    }
  }
  Tensor y;
  if (!out_shape.empty()) {
    Shape ys = out_shape;
    ys[0] = out_shape[0] * count;
    y = Tensor(ys);
    const int64_t per = numel(out_shape);
    for (size_t i = 0; i < results.size(); ++i)
      if (results[i].ok() && results[i].outputs[0].tensor.numel() == per)
        std::memcpy(y.f32() + i * per, results[i].outputs[0].tensor.f32(), per * sizeof(float));
    if (!output.empty()) write_npy(output, y);
  }

  std::ostringstream json;
  json << "{\"model\":\"" << co.model << "\",\"requests\":" << count << ",\"frames\":" << count * per_request
       << ",\"ok\":" << ok << ",\"errors\":" << errors << ",\"timed_out\":" << timed_out
       << ",\"lost\":" << timed_out << ",\"resends\":" << client.resends() << ",\"duplicates\":" << client.duplicates()
       << ",\"late\":" << client.late() << ",\"seconds\":" << secs
       << ",\"images_per_s\":" << ok * per_request / secs << ",\"ms_p50\":" << percentile(latency, 0.5)
       << ",\"ms_p90\":" << percentile(latency, 0.9) << ",\"ms_p99\":" << percentile(latency, 0.99);
  if (!labels.empty()) {   // scored even when nothing was answered: then 0 of 0
    auto lv = read_npy(labels).to_i64_vector();
    const int64_t n = y.empty() ? 0 : y.dim(0), classes = n ? y.numel() / n : 0;
    int64_t correct = 0, scored = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (!results[i / per_request].ok()) continue;   // a failed row has no answer to score
      const float* row = y.f32() + i * classes;
      const int64_t frame = i % frames;   // requests cycle through the input
      if (frame >= static_cast<int64_t>(lv.size())) throw ShapeError(labels + ": fewer labels than frames");
      correct += std::max_element(row, row + classes) - row == lv[frame];
      ++scored;
    }
    json << ",\"scored\":" << scored << ",\"correct\":" << correct
         << ",\"accuracy\":" << (scored ? double(correct) / scored : 0.0);
  }
  json << ",\"stages\":[";
  for (auto it = stage_ms.begin(); it != stage_ms.end(); ++it) {
    const int n = stage_hops[it->first];
    json << (it == stage_ms.begin() ? "" : ",") << "{\"stage\":" << it->first
         << ",\"compute_ms\":" << it->second.first / n << ",\"queue_ms\":" << it->second.second / n << "}";
  }
  json << "]}";
  std::cout << json.str() << std::endl;
  return errors + timed_out == 0 ? 0 : 3;
}

}  // namespace dnn::cli
