// hf2onnx::Error — the one exception type of the project. Thrown with context, caught once in main.
#pragma once
#include <stdexcept>
#include <string>
#include <utility>

namespace hf2onnx {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A name read from a file (tensor, zip entry, pickle global, shard) for a message, in single quotes:
// control and non-ASCII bytes escaped as \xNN, at most 80 bytes shown, so that the message stays one
// line and cannot carry much of a file that is not what it claims to be.
std::string quote_name(const std::string& name);

// Formats like "context: inner message" so that each level adds where it was (a message that already starts with
// the same context keeps one).
[[noreturn]] void rethrow_with_context(const std::string& context);

// Runs fn(); any exception escapes as an Error prefixed with `context`.
template <typename Fn>
auto with_context(const std::string& context, Fn&& fn) -> decltype(fn()) {
  try {
    return std::forward<Fn>(fn)();
  } catch (...) {
    rethrow_with_context(context);
  }
}

}  // namespace hf2onnx
