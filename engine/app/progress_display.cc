#include "engine/app/progress_display.h"

#include <sys/resource.h>

#include <cstdio>
#include <ostream>

namespace cw {

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000.0 && u < 4) {
    v /= 1000.0;
    ++u;
  }
  char text[32];
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.2f %s", v, kUnits[u]);
  return text;
}

uint64_t PeakResidentBytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

ProgressDisplay::ProgressDisplay(const ExecuteProgress& progress, uint64_t total_bytes,
                                 uint64_t total_tensors, std::ostream& out, bool enabled)
    : progress_(progress),
      total_bytes_(total_bytes),
      total_tensors_(total_tensors),
      out_(out),
      start_(std::chrono::steady_clock::now()) {
  if (enabled)
    thread_ = std::thread([this] { Loop(); });
}

ProgressDisplay::~ProgressDisplay() {
  if (!thread_.joinable())
    return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  out_ << "\r\033[K" << std::flush;
}

void ProgressDisplay::Loop() {
  std::unique_lock lock(mutex_);
  while (!cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stop_; }))
    Draw();
}

void ProgressDisplay::Draw() {
  const uint64_t bytes = progress_.bytes_done.load();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = seconds > 0 ? static_cast<double>(bytes) / seconds : 0;
  char eta[32] = "--";
  if (rate > 0) {
    std::snprintf(eta, sizeof eta, "%.0fs", static_cast<double>(total_bytes_ - bytes) / rate);
  }
  out_ << "\r\033[K" << HumanBytes(bytes) << " / " << HumanBytes(total_bytes_) << "  "
       << progress_.tensors_done.load() << "/" << total_tensors_ << " tensors  "
       << HumanBytes(static_cast<uint64_t>(rate)) << "/s  ETA " << eta << std::flush;
}

}  // namespace cw
