#include "hf2onnx/error.h"

#include <exception>
#include <new>

namespace hf2onnx {

std::string quote_name(const std::string& name) {
  constexpr size_t kMax = 80;
  std::string out = "'";
  for (size_t i = 0; i < name.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (name.size() > kMax) out += "...(" + std::to_string(name.size()) + " bytes)";
  return out + "'";
}

void rethrow_with_context(const std::string& context) {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    throw Error(context + ": out of memory");
  } catch (const std::exception& e) {
    const std::string what = e.what();
    if (what.rfind(context + ": ", 0) == 0) throw Error(what);  // already says where (a config's own error)
    throw Error(context + ": " + what);
  }
}

}  // namespace hf2onnx
