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

// Formats like "context: inner message" so that each level adds where it was.
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
