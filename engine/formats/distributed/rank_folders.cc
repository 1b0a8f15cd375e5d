#include "engine/formats/distributed/rank_folders.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>

#include "engine/base/mapped_file.h"

namespace cw::distributed {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kRankPrefix = "rank_";

// The rank of a folder named rank_<digits>, as MindSpore reads it (int() of the digits).
std::optional<uint64_t> RankOf(const std::string& name) {
  if (!name.starts_with(kRankPrefix) || name.size() == kRankPrefix.size())
    return std::nullopt;
  const std::string_view digits = std::string_view(name).substr(kRankPrefix.size());
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  uint64_t rank = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), rank);
  if (ec != std::errc() || end != digits.data() + digits.size() || rank > UINT32_MAX)
    return UINT64_MAX;  // digits, but too many: refused by the caller
  return rank;
}

// Every number in `text`, in order (MindSpore's _extract_numbers: re.findall(r'\d+')); numbers
// too long for 64 bits saturate.
std::vector<uint64_t> Numbers(const std::string& text) {
  std::vector<uint64_t> numbers;
  for (size_t i = 0; i < text.size();) {
    if (text[i] < '0' || text[i] > '9') {
      ++i;
      continue;
    }
    uint64_t value = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      const auto digit = static_cast<uint64_t>(text[i] - '0');
      value = value > (UINT64_MAX - digit) / 10 ? UINT64_MAX : value * 10 + digit;
    }
    numbers.push_back(value);
  }
  return numbers;
}

// MindSpore's order for several safetensors files of one rank: by the last two numbers of the
// path (as glob gave it), then by name, ours, where MindSpore keeps glob's unspecified order.
bool SafetensorsBefore(const fs::path& a, const fs::path& b) {
  std::vector<uint64_t> na = Numbers(a.string());
  std::vector<uint64_t> nb = Numbers(b.string());
  na.erase(na.begin(), na.end() - static_cast<std::ptrdiff_t>(std::min<size_t>(2, na.size())));
  nb.erase(nb.begin(), nb.end() - static_cast<std::ptrdiff_t>(std::min<size_t>(2, nb.size())));
  if (na != nb)
    return na < nb;
  return a.filename().string() < b.filename().string();
}

}  // namespace

bool IsDistributedFolder(const fs::path& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    return false;
  for (fs::directory_iterator it(folder, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    if (RankOf(it->path().filename().string()) && it->is_directory(ec))
      return true;
  }
  return false;
}

Result<RankFiles> FindRankFiles(const fs::path& folder) {
  const std::string where = folder.string();
  std::map<uint64_t, fs::path> rank_dirs;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::optional<uint64_t> rank = RankOf(name);
    if (!rank || !it->is_directory(ec))
      continue;
    if (*rank == UINT64_MAX) {
      return Error(ErrorCode::kCorrupt, "rank folder number is over 2^32 - 1",
                   FileLocation(it->path().string()));
    }
    const auto [at, added] = rank_dirs.emplace(*rank, it->path());
    if (!added) {
      return Error(ErrorCode::kCorrupt,
                   "rank " + std::to_string(*rank) +
                       " has two folders: " + at->second.filename().string() + " and " + name,
                   FileLocation(it->path().string()));
    }
    if (rank_dirs.size() > kMaxOpenInputs) {
      return Error(ErrorCode::kLimitExceeded,
                   "more than " + std::to_string(kMaxOpenInputs) +
                       " rank folders (kMaxOpenInputs: every rank file stays open)",
                   FileLocation(where));
    }
  }
  if (ec)
    return Error(ErrorCode::kIo, "cannot list the folder: " + ec.message(), FileLocation(where));
  if (rank_dirs.empty())
    return Error(ErrorCode::kUsage, "no rank_<r> folders", FileLocation(where));

  RankFiles out;
  std::optional<bool> safetensors;
  uint64_t with_several = 0;
  std::string example;
  for (const auto& [rank, dir] : rank_dirs) {
    std::vector<fs::path> ckpt;
    std::vector<fs::path> st;
    for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      if (!it->is_regular_file(ec))
        continue;
      const std::string ext = it->path().extension().string();
      if (ext == ".ckpt")
        ckpt.push_back(it->path());
      if (ext == ".safetensors")
        st.push_back(it->path());
    }
    if (ec) {
      return Error(ErrorCode::kIo, "cannot list the rank folder: " + ec.message(),
                   FileLocation(dir.string()));
    }
    if (ckpt.empty() && st.empty()) {
      return Error(ErrorCode::kCorrupt, "rank folder holds no .ckpt or .safetensors file",
                   FileLocation(dir.string()));
    }
    const bool is_st = ckpt.empty();
    if ((!ckpt.empty() && !st.empty()) || (safetensors && *safetensors != is_st)) {
      return Error(ErrorCode::kUnsupported,
                   ".ckpt and .safetensors rank files mixed (MindSpore refuses them too)",
                   FileLocation(dir.string()));
    }
    safetensors = is_st;
    std::vector<fs::path>& files = is_st ? st : ckpt;
    if (is_st) {
      std::sort(files.begin(), files.end(), SafetensorsBefore);
    } else {
      std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
        return a.filename().string() < b.filename().string();
      });
    }
    if (files.size() > 1 && with_several++ == 0) {
      example = dir.filename().string() + ": " + files.back().filename().string() + " of " +
                std::to_string(files.size());
    }
    out.ranks.push_back({rank, files.back().string(), files.size()});
  }
  out.safetensors = *safetensors;
  if (with_several > 0) {
    out.notes.push_back(
        std::to_string(with_several) + " rank folder" + (with_several == 1 ? " holds" : "s hold") +
        " several checkpoint files: taking in each, as MindSpore does, the last " +
        (out.safetensors ? "by the last two numbers of its name" : "in name order") + " (" +
        example + ")");
  }
  return out;
}

Result<fs::path> FindStrategy(const fs::path& folder) {
  std::error_code ec;
  if (fs::is_directory(folder / "strategy", ec))
    return folder / "strategy";
  std::vector<fs::path> found;
  for (fs::directory_iterator it(folder, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_regular_file(ec) && name.find("strategy") != std::string::npos &&
        it->path().extension() == ".ckpt") {
      found.push_back(it->path());
    }
  }
  std::sort(found.begin(), found.end());
  if (found.size() == 1)
    return found.front();
  if (found.empty()) {
    return Error(ErrorCode::kUsage,
                 "a distributed checkpoint needs its parallel strategy: give --strategy FILE|DIR "
                 "(none beside the rank folders: no strategy/ folder, no *strategy*.ckpt)",
                 FileLocation(folder.string()));
  }
  std::string names;
  for (const fs::path& f : found)
    names += (names.empty() ? "" : ", ") + f.filename().string();
  return Error(
      ErrorCode::kUsage,
      "several strategy files beside the rank folders (" + names + "): choose one with --strategy",
      FileLocation(folder.string()));
}

}  // namespace cw::distributed
