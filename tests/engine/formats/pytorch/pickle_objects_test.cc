// The pickle machine's arena, memo and shared values (pickle_objects.cc): what a pickle costs in
// memory, measured against the cap of limits::kPickleArenaBytesPerByte per pickle byte.
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <functional>

#include <doctest/doctest.h>

#include "engine/formats/pytorch/pickle_reader.h"
#include "tests/engine/formats/pytorch/pickle_run.h"
#include "tests/support/pickle_builder.h"

namespace cw::pytorch {
namespace {

using test::pt::PickleBuilder;

using test_pickle::kBase;
using test_pickle::Run;
using test_pickle::RunOk;

// `unit` repeated to make about `bytes` bytes.
std::string Repeat(const std::string& unit, size_t bytes) {
  std::string out;
  out.reserve(bytes);
  while (out.size() + unit.size() <= bytes)
    out += unit;
  return out;
}

struct Flood {
  std::string what;
  std::string bytes;
  bool read;  // else refused as kLimitExceeded
};

// The densest ways a pickle of about `bytes` bytes can make values, each alone.
std::vector<Flood> Floods(size_t bytes) {
  const std::string head = PickleBuilder().Proto().bytes();
  PickleBuilder tensors;  // the same call again and again, its callable and arguments memoized
  tensors.Proto().EmptyList().Global("torch._utils", "_rebuild_tensor_v2").Put(0).Mark();
  tensors.StorageId("FloatStorage", "0", 2).Int(0).Ints({2}).Ints({1}).Bool(false).OrderedDict();
  tensors.Tuple().Put(1).Pop().Pop();
  PickleBuilder sets;  // set(a list of 1000 items), again and again
  sets.Proto().EmptyList().Global("builtins", "set").Put(0).Pop().Mark();
  for (int i = 0; i < 1000; ++i)
    sets.Int(i);
  sets.Op('l').Tuple1().Put(1).Pop();
  PickleBuilder encodes;  // _codecs.encode(<a 1000-byte string>, "latin1"), again and again
  encodes.Proto().EmptyList().Global("_codecs", "encode").Put(0).Pop();
  encodes.Str(std::string(1000, 'x')).Str("latin1").Tuple2().Put(1).Pop();
  PickleBuilder call;  // callable and arguments from the memo, the result appended
  call.Get(0).Get(1).Reduce().Append();
  return {
      {"None and APPEND", head + "]" + Repeat("Na", bytes) + ".", true},
      {"EMPTY_LIST and APPEND", head + "]" + Repeat("]a", bytes) + ".", true},
      {"MEMOIZE of one value", head + "N" + Repeat("\x94", bytes) + ".", true},
      {"empty strings in batches",
       head + "]" + Repeat("(" + Repeat(std::string("\x8c\x00", 2), 2000) + "e", bytes) + ".",
       true},
      {"tensor calls over memoized arguments", tensors.bytes() + Repeat(call.bytes(), bytes) + ".",
       true},
      {"EMPTY_LIST in batches",
       head + "]" + Repeat("(" + std::string(4000, ']') + "e", bytes) + ".", false},
      {"persistent ids of None", head + "]" + Repeat("(" + Repeat("NQ", 4000) + "e", bytes) + ".",
       false},
      {"set() of one list", sets.bytes() + Repeat(call.bytes(), bytes) + ".", false},
      {"_codecs.encode of one string", encodes.bytes() + Repeat(call.bytes(), bytes) + ".", false},
  };
}

// What a reader with `limits` may hold for a pickle of `pickle_bytes`.
uint64_t Cap(const PickleLimits& limits, uint64_t pickle_bytes) {
  return limits.arena_base_bytes + limits.arena_bytes_per_byte * pickle_bytes;
}

// AddressSanitizer keeps freed memory in quarantine and pads every allocation, so resident
// memory under it says nothing about what the reader holds.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
constexpr bool kAddressSanitizer = __has_feature(address_sanitizer);
#else
constexpr bool kAddressSanitizer = false;
#endif

// A line "<name>: <n> kB" of /proc/self/status, in bytes.
uint64_t StatusBytes(std::string_view name) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (!line.starts_with(name) || line.size() <= name.size() || line[name.size()] != ':')
      continue;
    const size_t digits = line.find_first_of("0123456789");
    uint64_t kib = 0;
    std::from_chars(line.data() + digits, line.data() + line.size(), kib);
    return kib * 1024;
  }
  return 0;
}

// How far resident memory rises above its start while `run` runs, measured in a child process
// so that nothing else in this test binary counts. The child first returns the heap's free pages,
// which earlier tests left resident, so that every page `run` uses counts. Should resetting the
// peak fail, it is the child's size at the fork (Linux sets it so): the growth only looks larger.
uint64_t PeakGrowthInChild(const std::function<void()>& run) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    malloc_trim(0);
    std::ofstream("/proc/self/clear_refs") << "5";  // the peak becomes the current size
    const uint64_t start = StatusBytes("VmRSS");
    run();
    const uint64_t growth = StatusBytes("VmHWM") - start;
    const bool sent = write(fds[1], &growth, sizeof growth) == sizeof growth;
    _exit(sent ? 0 : 1);
  }
  close(fds[1]);
  uint64_t growth = 0;
  const bool got = read(fds[0], &growth, sizeof growth) == sizeof growth;
  close(fds[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(got);
  REQUIRE(WIFEXITED(status));
  return growth;
}

TEST_SUITE("formats.pytorch.pickle_objects") {
  TEST_CASE("holds at most 16 bytes per pickle byte for the densest pickles, or refuses them") {
    PickleLimits limits;  // a small base, so that the bytes per pickle byte decide
    limits.arena_base_bytes = 64 << 10;
    for (const Flood& flood : Floods(256 << 10)) {
      CAPTURE(flood.what);
      auto tree = Run(flood.bytes, limits);
      CHECK(tree.ok() == flood.read);
      if (!tree.ok()) {
        CHECK(tree.error().code() == ErrorCode::kLimitExceeded);
        continue;
      }
      const uint64_t arena = tree->arena_bytes();
      CAPTURE(arena);
      CHECK(arena <= Cap(limits, flood.bytes.size()));
    }
  }

  TEST_CASE("a pickle of None and APPEND takes 4 bytes per None, all one shared value") {
    const std::string bytes = PickleBuilder().Proto().bytes() + "]" + Repeat("Na", 256 << 10) + ".";
    const PickleTree tree = RunOk(bytes);
    CHECK(tree.size() == 2);  // the list and None
    CHECK(tree.arena_bytes() <= 4 * bytes.size() + 8192);
  }

  TEST_CASE("a hostile pickle of 2 MB raises peak memory by at most 16 bytes per byte") {
    if (kAddressSanitizer) {
      MESSAGE("skipped under AddressSanitizer: the optimised build runs it");
      return;
    }
    for (const Flood& flood : Floods(2 << 20)) {
      CAPTURE(flood.what);
      const uint64_t growth = PeakGrowthInChild([&] { (void)Run(flood.bytes); });
      CAPTURE(growth);
      // The allocator's own overhead comes on top of what the reader holds: the cap still has to
      // hold for the process as a whole.
      CHECK(growth <= Cap(PickleLimits{}, flood.bytes.size()));
    }
  }

  TEST_CASE("makes None True False () and each global once however often the pickle asks") {
    PickleBuilder p;
    p.Proto().Mark().None().None().Bool(true).Bool(true).Bool(false).Bool(false).EmptyTuple();
    p.Mark().Tuple().Global("torch", "Size").Global("torch", "Size").Tuple().Stop();
    const PickleTree tree = RunOk(p.bytes());
    const Object root = tree.at(tree.root());
    REQUIRE(root.items.size() == 10);
    CHECK(root.items[0] == root.items[1]);
    CHECK(root.items[2] == root.items[3]);
    CHECK(root.items[4] == root.items[5]);
    CHECK(root.items[6] == root.items[7]);
    CHECK(root.items[8] == root.items[9]);
    CHECK(tree.at(root.items[2]).int_value == 1);
    CHECK(tree.at(root.items[4]).int_value == 0);
    CHECK(tree.size() == 6);  // None, True, False, (), torch.Size, the root tuple
  }

  TEST_CASE("keeps memo indices beyond the pickle's length apart and counts entries as Python") {
    PickleBuilder p;
    p.Proto().Mark().Int(7).Put(0xFFFFFFFF).Pop().Int(8).Op(0x94).Pop().Int(9).Put(3).Pop();
    p.Get(0xFFFFFFFF).Get(1).Get(3).Tuple().Stop();
    const PickleTree tree = RunOk(p.bytes());
    const Items items = tree.at(tree.root()).items;
    REQUIRE(items.size() == 3);
    CHECK(tree.at(items[0]).int_value == 7);
    CHECK(tree.at(items[1]).int_value == 8);  // MEMOIZE put at len(memo), 1
    CHECK(tree.at(items[2]).int_value == 9);

    PickleLimits limits;
    limits.max_memo_entries = 2;
    const std::string sparse =
        PickleBuilder().Proto().None().Put(0xFFFFFFF0).Put(0xFFFFFFF1).Put(0xFFFFFFF2).bytes();
    auto refused = Run(sparse, limits);
    CHECK(refused.error().code() == ErrorCode::kLimitExceeded);
    CHECK(refused.error().where().offset == kBase + 13);
  }

  TEST_CASE("a string copied by calls counts against the same cap as the values") {
    PickleLimits limits;
    limits.arena_base_bytes = 64 << 10;
    PickleBuilder p;
    p.Proto().EmptyList().Global("_codecs", "encode").Put(0).Pop();
    p.Str(std::string(10000, 'x')).Str("latin1").Tuple2().Put(1).Pop();
    for (int i = 0; i < 20; ++i)
      p.Get(0).Get(1).Reduce().Append();
    auto tree = Run(p.bytes(), limits);
    CHECK(tree.error().code() == ErrorCode::kLimitExceeded);
  }

  TEST_CASE("stops at the pickle length cap, at the first opcode past it") {
    PickleLimits limits;
    limits.max_pickle_bytes = 100;
    const std::string bytes = PickleBuilder().Proto().bytes() + std::string(200, 'N');
    auto tree = Run(bytes, limits);
    CHECK(tree.error().code() == ErrorCode::kLimitExceeded);
    CHECK(tree.error().where().offset == kBase + 100);
    CHECK(Run(PickleBuilder().Proto().None().Stop().bytes(), limits).ok());
  }
}

}  // namespace
}  // namespace cw::pytorch
