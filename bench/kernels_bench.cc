// Google Benchmark kernels: the hot inner pieces of the model, packaging and pyinstall.
//   cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DSTRATA_BUILD_BENCH=ON
//   cmake --build build-bench --target strata_kernels && build-bench/bench/strata_kernels
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "agent/env_manager.h"
#include "model/runtime_env.h"
#include "packaging/archive.h"
#include "packaging/ignore.h"
#include "packaging/manifest.h"
#include "packaging/tree_walk.h"
#include "pyinstall/venv.h"
#include "util/pyjson.h"

namespace {

namespace fs = std::filesystem;
using strata::util::Json;

const char* kEnv = R"({"working_dir": "s3://bucket/pkg.zip", "pip": ["requests==2.28.1", "numpy",
  "pandas>=1.5"], "env_vars": {"OMP_NUM_THREADS": "4", "GREETING": "h\u00e9llo"},
  "config": {"setup_timeout_seconds": 300}, "plugin": {"x": [1.5, 2, true, null]}})";

void BM_RuntimeEnvCreateAndSerialize(benchmark::State& state) {
  Json fields = *strata::util::ParseJson(kEnv);
  for (auto _ : state) {
    auto env = strata::model::RuntimeEnv::Create(fields);
    benchmark::DoNotOptimize(env->Serialize());
  }
}
BENCHMARK(BM_RuntimeEnvCreateAndSerialize);

void BM_DumpsSorted(benchmark::State& state) {
  Json value = *strata::util::ParseJson(kEnv);
  for (auto _ : state) benchmark::DoNotOptimize(strata::util::DumpsSorted(value));
}
BENCHMARK(BM_DumpsSorted);

void BM_IgnoreMatch(benchmark::State& state) {
  auto rules = strata::packaging::IgnoreRules::FromFileContent(
      "*.pyc\n/build/\ndata/**/tmp\n!keep.log\n*.log\n[Tt]est_*.py\n");
  const char* paths[] = {"src/pkg/module.py", "data/a/b/tmp", "logs/run.log",
                         "keep.log",          "build",        "tests/test_x.py"};
  for (auto _ : state) {
    for (const char* path : paths) benchmark::DoNotOptimize(rules.IsExcluded(path, false));
  }
  state.SetItemsProcessed(state.iterations() * 6);
}
BENCHMARK(BM_IgnoreMatch);

// A tree of `files` files of `bytes` each under /dev/shm (or /tmp).
class Tree {
 public:
  Tree(int files, size_t bytes) {
    fs::path base = fs::exists("/dev/shm") ? "/dev/shm" : fs::temp_directory_path();
    root_ = base / ("strata-bench-" + std::to_string(::getpid()));
    std::mt19937 rng(1);
    std::string content(bytes, '\0');
    for (int i = 0; i < files; ++i) {
      for (char& c : content) c = static_cast<char>(rng());
      fs::path path = root_ / ("d" + std::to_string(i % 20)) / ("f" + std::to_string(i));
      fs::create_directories(path.parent_path());
      std::ofstream(path, std::ios::binary) << content;
    }
  }
  ~Tree() { fs::remove_all(root_); }
  const fs::path& root() const { return root_; }

 private:
  fs::path root_;
};

void BM_WalkAndManifest(benchmark::State& state) {
  Tree tree(1000, 16 * 1024);
  strata::packaging::WalkOptions options;
  for (auto _ : state) {
    auto entries = strata::packaging::WalkPackageTree(tree.root(), {}, options);
    benchmark::DoNotOptimize(strata::packaging::BuildManifest(*entries));
  }
  state.SetBytesProcessed(state.iterations() * 1000 * 16 * 1024);
}
BENCHMARK(BM_WalkAndManifest)->Unit(benchmark::kMillisecond);

void BM_WriteZipStored(benchmark::State& state) {
  Tree tree(1000, 16 * 1024);
  auto entries = strata::packaging::WalkPackageTree(tree.root(), {}, {});
  fs::path out = tree.root().string() + ".zip";
  for (auto _ : state) {
    benchmark::DoNotOptimize(strata::packaging::WriteZip(*entries, out));
  }
  fs::remove(out);
  state.SetBytesProcessed(state.iterations() * 1000 * 16 * 1024);
}
BENCHMARK(BM_WriteZipStored)->Unit(benchmark::kMillisecond);

void BM_GetOrCreateWarm(benchmark::State& state) {
  fs::path home = fs::temp_directory_path() / ("strata-bench-home-" + std::to_string(::getpid()));
  strata::agent::NodePaths paths{home, home / "session"};
  auto manager = strata::agent::EnvManager::Open(paths);
  strata::agent::CreateRequest request;
  request.serialized_env =
      *strata::model::RuntimeEnv::Create(
           *strata::util::ParseJson(
               R"({"env_vars": {"A": "1"}, "config": {"setup_timeout_seconds": 30}})"))
           ->Serialize();
  request.job_id = "bench";
  if (!(*manager)->GetOrCreate(request)) state.SkipWithError("cold creation failed");
  for (auto _ : state) benchmark::DoNotOptimize((*manager)->GetOrCreate(request));
  manager->reset();
  fs::remove_all(home);
}
BENCHMARK(BM_GetOrCreateWarm);

// One virtual environment, the base interpreter's facts already read (they are
// cached per process). Base: $STRATA_BENCH_PYTHON, else python3 on PATH; the
// environments go below $TMPDIR.
void BM_CreateVenv(benchmark::State& state) {
  const char* python = std::getenv("STRATA_BENCH_PYTHON");
  auto base = strata::pyinstall::BaseInterpreter::Read(python != nullptr ? python : "python3");
  if (!base) {
    state.SkipWithError(base.error().message.c_str());
    return;
  }
  fs::path root = fs::temp_directory_path() / ("strata-bench-venv-" + std::to_string(::getpid()));
  int round = 0;
  for (auto _ : state) {
    auto info = strata::pyinstall::CreateVenv(root / std::to_string(round++), *base);
    if (!info) state.SkipWithError(info.error().message.c_str());
    state.PauseTiming();
    fs::remove_all(root);
    state.ResumeTiming();
  }
}
BENCHMARK(BM_CreateVenv)->Unit(benchmark::kMillisecond);

}  // namespace
