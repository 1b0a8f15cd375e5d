// A progress line on a terminal (bytes and tensors done, rate, ETA), redrawn twice a second by a
// background thread, and the one-line summary printed after a conversion.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iosfwd>
#include <mutex>
#include <thread>

#include "engine/exec/executor.h"

namespace cw {

class ProgressDisplay {
 public:
  // Draws nothing unless `enabled`.
  ProgressDisplay(const ExecuteProgress& progress, uint64_t total_bytes, uint64_t total_tensors,
                  std::ostream& out, bool enabled);
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;
  ~ProgressDisplay();  // stops and clears the line

 private:
  void Loop();
  void Draw();

  const ExecuteProgress& progress_;
  const uint64_t total_bytes_;
  const uint64_t total_tensors_;
  std::ostream& out_;
  const std::chrono::steady_clock::time_point start_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// "1.23 GB"
std::string HumanBytes(uint64_t bytes);
// Peak resident memory of this process so far, in bytes.
uint64_t PeakResidentBytes();

}  // namespace cw
