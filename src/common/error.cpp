#include "hf2onnx/error.h"

#include <exception>
#include <new>

namespace hf2onnx {

void rethrow_with_context(const std::string& context) {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    throw Error(context + ": out of memory");
  } catch (const std::exception& e) {
    throw Error(context + ": " + e.what());
  }
}

}  // namespace hf2onnx
