// `tagnet bench`: training and inference speed of the tutorial networks, GEMM GFLOP/s and a
// per-layer table (tagnet/train/bench.h).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <string>
#include <iostream>

#include "commands.h"
#include "tagnet/train/bench.h"

namespace tagnet::native {

namespace {

void print_bench(const nlohmann::json& r) {
  std::printf("%s\n", r["engine"].get<std::string>().c_str());
  if (r.contains("cpu")) std::printf("cpu: %s\n", r["cpu"].get<std::string>().c_str());
  std::printf("gemm 1024x1024x1024: %.1f GFLOP/s\n\n", r["gemm_gflops"].get<double>());
  for (const char* net : {"smallervggnet", "fashionnet"}) {
    if (!r.contains(net)) continue;
    const auto& n = r[net];
    std::printf("%s (%zu parameters)\n", net, n["params"].get<size_t>());
    std::printf("  training, batch 32:     %8.1f images/s (%.1f ms per batch)\n", n["train_images_per_s"].get<double>(),
                n["train_batch_ms"].get<double>());
    std::printf("  inference, batch 1:     %8.2f ms\n", n["infer_b1_ms"].get<double>());
    std::printf("  inference, batch 32:    %8.1f images/s\n", n["infer_b32_images_per_s"].get<double>());
    if (!n.contains("layers")) continue;
    std::printf("  %-22s %-22s %9s %9s %9s %9s\n", "layer", "type", "fwd ms", "bwd ms", "fwd GF/s", "bwd GF/s");
    for (const auto& l : n["layers"]) {
      std::printf("  %-22s %-22s %9.2f %9.2f", l["name"].get<std::string>().c_str(), l["type"].get<std::string>().c_str(),
                  l["forward_ms"].get<double>(), l["backward_ms"].get<double>());
      if (l.contains("forward_gflops"))
        std::printf(" %9.1f %9.1f", l["forward_gflops"].get<double>(), l["backward_gflops"].get<double>());
      std::printf("\n");
    }
    std::printf("\n");
  }
}

// The processor's model name, so that a figure says which machine it came from.
std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "";
}

}  // namespace

Command add_bench(CLI::App& app) {
  struct Args {
    BenchOptions bench;
    bool no_layers = false, json = false;
    EngineArgs engine;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("bench", "Measure training and inference speed");
  c->add_flag("--json", a->json, "Print one JSON object");
  c->add_option("--seconds", a->bench.seconds_per_figure, "Time budget per figure")->capture_default_str();
  c->add_flag("--no-layers", a->no_layers, "Skip the per-layer table");
  add_engine_options(c, a->engine);
  return {c, [a] {
            a->bench.per_layer = !a->no_layers;
            Engine engine(Engine::Options{a->engine.threads, a->engine.backend});
            nlohmann::json r = run_bench(engine, a->bench);
            if (const std::string cpu = cpu_model(); !cpu.empty()) r["cpu"] = cpu;
            if (a->json) std::cout << r.dump() << "\n";
            else print_bench(r);
            return 0;
          }};
}

}  // namespace tagnet::native
