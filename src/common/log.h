// Logging helpers shared by every stage: a stage timer that logs one line with its duration.
#pragma once
#include <chrono>
#include <string>

#include <spdlog/spdlog.h>

namespace hf2onnx {

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// A progress bar on stderr for long steps ("writing model.onnx [#######.....]  58%  2.4/4.1 GB  1.3 GB/s"),
// drawn once the step has run for a second (HF2ONNX_PROGRESS_AFTER_MS overrides) and erased when it ends;
// silent unless stderr is a terminal and the log level is info or more verbose (logs stay plain lines).
class Progress {
 public:
  Progress(std::string label, uint64_t total);
  ~Progress();
  void advance(uint64_t n);

 private:
  std::string label_;
  uint64_t total_, done_ = 0;
  int last_percent_ = -1;
  bool enabled_, drawn_ = false;
  double after_seconds_ = 1.0;
  Stopwatch clock_;
};

std::string format_bytes(uint64_t bytes);

// Peak resident set size of this process so far (VmHWM), in bytes; 0 where unavailable.
uint64_t peak_rss_bytes();
// Minor page faults of the whole process so far (getrusage), for the -v stage lines.
uint64_t minor_faults();

}  // namespace hf2onnx
