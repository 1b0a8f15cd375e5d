#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <thread>

#include "cw/convert_weight.h"
#include "engine/base/output_file.h"

namespace cw {

void InstallInterruptCleanup() {
  // Block the signals in every thread (threads inherit the mask) and take them synchronously in a
  // dedicated thread, where removing files is safe, unlike in an asynchronous signal handler.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    sigwait(&set, &sig);
    RemoveAllTemporaries();
    static constexpr char kMessage[] = "convert_weight: interrupted; no output was written\n";
    (void)!::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
    ::_exit(128 + sig);
  }).detach();
}

}  // namespace cw
