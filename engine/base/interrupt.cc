#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <thread>

#include "cw/convert_weight.h"
#include "engine/base/mapped_file.h"
#include "engine/base/output_file.h"

namespace cw {
namespace {

// ExitCodeFor(kIo): an input changed under us is an environment fault, like the same change found
// by CheckMappedInputsUnchanged() before a commit.
constexpr int kExitInputChanged = 3;

struct sigaction previous_bus_action {};

void WriteToStderr(const char* text) { (void)!::write(STDERR_FILENO, text, std::strlen(text)); }

// A read past the end of a mapped input that another process truncated. Only system calls and
// lock-free reads happen here, as in any signal handler.
void OnBusError(int, siginfo_t* info, void*) {
  const char* input = MappedInputAt(info->si_addr);
  if (input == nullptr) {
    // Not an input: a bug. Returning re-runs the faulting access under the previous disposition,
    // which reports it as it would have without this handler.
    ::sigaction(SIGBUS, &previous_bus_action, nullptr);
    return;
  }
  // Other readers of the same file fault too: one report, while the others wait for the exit.
  static std::atomic_flag reported;
  while (reported.test_and_set())
    ::pause();
  RemoveAllTemporaries();
  WriteToStderr("convert_weight: ");
  WriteToStderr(input);
  WriteToStderr(": error: ");
  WriteToStderr(kInputChangedMessage);
  WriteToStderr(" (truncated?); no output was written\n");
  ::_exit(kExitInputChanged);
}

}  // namespace

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

  // SIGBUS is raised in the thread that read, so it needs a real handler.
  struct sigaction bus {};
  bus.sa_sigaction = OnBusError;
  bus.sa_flags = SA_SIGINFO;
  sigemptyset(&bus.sa_mask);
  ::sigaction(SIGBUS, &bus, &previous_bus_action);
}

}  // namespace cw
