#include "common/log.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace hf2onnx {

Progress::Progress(std::string label, uint64_t total)
    : label_(std::move(label)), total_(total),
      enabled_(isatty(STDERR_FILENO) && spdlog::get_level() <= spdlog::level::info && total > 0) {
  if (const char* ms = std::getenv("HF2ONNX_PROGRESS_AFTER_MS")) after_seconds_ = std::atof(ms) / 1000.0;
}

Progress::~Progress() {
  if (drawn_) std::fprintf(stderr, "\r\033[K");
}

void Progress::advance(uint64_t n) {
  done_ += n;
  if (!enabled_) return;
  const int percent = static_cast<int>(100.0 * static_cast<double>(done_) / static_cast<double>(total_));
  const double t = clock_.seconds();
  if (percent == last_percent_ || t < after_seconds_) return;
  last_percent_ = percent;
  drawn_ = true;
  constexpr int kWidth = 24;
  const int filled = percent * kWidth / 100;
  const std::string bar = std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(kWidth - filled), '.');
  const std::string rate = t > 0 ? format_bytes(static_cast<uint64_t>(static_cast<double>(done_) / t)) + "/s" : "";
  std::fprintf(stderr, "\r\033[K%s [%s] %3d%%  %s / %s  %s", label_.c_str(), bar.c_str(), percent,
               format_bytes(done_).c_str(), format_bytes(total_).c_str(), rate.c_str());
  std::fflush(stderr);
}

uint64_t peak_rss_bytes() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  uint64_t kb = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmHWM: %lu kB", &kb) == 1) break;
  std::fclose(f);
  return kb * 1024;
}

uint64_t minor_faults() {
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return static_cast<uint64_t>(u.ru_minflt);
}

std::string format_bytes(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.2f GB", bytes / double(1ull << 30));
  else if (bytes >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%.1f MB", bytes / double(1ull << 20));
  else if (bytes >= 1024)
    std::snprintf(buf, sizeof buf, "%.1f KB", bytes / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

}  // namespace hf2onnx
