#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <doctest/doctest.h>

#include "cw/convert_weight.h"
#include "engine/base/mapped_file.h"
#include "engine/base/output_file.h"
#include "tests/support/test_files.h"

namespace cw {
namespace {
namespace fs = std::filesystem;

struct Exited {
  int status = -1;  // the exit status, -1 when killed by a signal
  std::string stderr_text;
};

// Runs `child` in a forked process whose stderr is captured: the handler under test ends the
// process, which the test process must survive.
template <typename Child>
Exited RunForked(Child child) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], STDERR_FILENO);
    child();
    ::_exit(99);
  }
  ::close(fds[1]);
  Exited exited;
  char buffer[512];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;)
    exited.stderr_text.append(buffer, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  if (WIFEXITED(status))
    exited.status = WEXITSTATUS(status);
  return exited;
}

TEST_SUITE("base.interrupt") {
  TEST_CASE("a read past the end of a truncated input exits 3 naming it, temporaries removed") {
    test::TempDir dir;
    const fs::path input = dir / "in.bin";
    test::WriteFile(input, std::string(64 * 1024, 'x'));
    const Exited exited = RunForked([&] {
      InstallInterruptCleanup();
      auto file = MappedFile::Open(input);
      auto out = OutputFile::Create(dir / "out.bin", false);
      auto staged = OutputDir::Create(dir / "folder", false);
      if (!file.ok() || !out.ok() || !staged.ok())
        return;
      test::WriteFile(staged->staging() / "shard", "1");
      fs::resize_file(input, 0);
      const volatile std::byte* last = &file->bytes().back();
      (void)*last;
    });
    CHECK(exited.status == 3);
    CHECK(exited.stderr_text == "convert_weight: " + input.string() +
                                    ": error: " + kInputChangedMessage +
                                    " (truncated?); no output was written\n");
    CHECK(test::ListFolder(dir.path()) == std::vector<std::string>{"in.bin"});
  }
}

}  // namespace
}  // namespace cw
