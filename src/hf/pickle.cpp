#include "hf/pickle.h"

#include <cstring>
#include <map>
#include <unordered_map>

#include "hf2onnx/error.h"

namespace hf2onnx::hf::pickle {
namespace {

// The allow-list. Storage types map to their dtype; callables are handled in reduce().
const std::map<std::string, DType>& storage_types() {
  static const std::map<std::string, DType> kTypes = {
      {"torch.FloatStorage", DType::F32},  {"torch.HalfStorage", DType::F16},
      {"torch.BFloat16Storage", DType::BF16}, {"torch.DoubleStorage", DType::F64},
      {"torch.LongStorage", DType::I64},   {"torch.IntStorage", DType::I32},
      {"torch.ShortStorage", DType::I16},  {"torch.CharStorage", DType::I8},
      {"torch.ByteStorage", DType::U8},    {"torch.BoolStorage", DType::Bool}};
  return kTypes;
}
const char* const kCallables[] = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                  "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter"};

// Every object of one load; its destructor breaks reference cycles.
struct Arena {
  std::vector<Ref> objects;
  ~Arena() {
    for (auto& o : objects) {
      o->items.clear();
      o->dict.clear();
      o->storage.reset();
    }
  }
};

// Limits that keep memory proportional to the input: a pickle is a program, and a few bytes of it can
// ask for a lot of memory (4 MB of None opcodes once took 1.3 GB). Real torch pickles stay far below
// these: the pickler batches APPENDS/SETITEMS by 1000, so the stack holds a few thousand items, and the
// objects of a state dict take about 30 times the bytes of its pickle.
constexpr size_t kMaxStack = size_t(1) << 17;   // stack entries
constexpr size_t kMaxMarks = size_t(1) << 12;   // open MARKs (nesting)
constexpr uint64_t kBudgetPerByte = 64;         // bytes of memory per byte of input ...
constexpr uint64_t kBudgetBase = 64ull << 20;   // ... plus this much for small pickles
constexpr uint64_t kObjectCost = sizeof(Object) + 64;  // + control block, arena slot, allocator overhead
constexpr uint64_t kMemoEntryCost = 64;                // a hash node and its bucket

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, const PersistentLoad& pl, const std::string& source)
      : p_(data), size_(size), persistent_load_(pl), source_(source),
        budget_(kBudgetBase + kBudgetPerByte * static_cast<uint64_t>(size)) {
    // None, True, False and () are immutable here: one shared object each, as in Python.
    none_ = make(Kind::None);
    true_ = make(Kind::Bool);
    true_->b = true;
    false_ = make(Kind::Bool);
    empty_tuple_ = make(Kind::Tuple);
  }

  Result run() {
    while (true) {
      uint8_t op = read_u8();
      if (op == '.') {  // STOP
        Result r;
        r.value = pop();
        r.end = pos_;
        r.arena = arena_;
        r.memory = used_;
        return r;
      }
      step(op);
    }
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(source_ + ": corrupt or unsupported pickle at byte " + std::to_string(op_pos_) + ": " + why);
  }
  const uint8_t* take(size_t n) {
    if (n > size_ - pos_) fail("truncated (needs " + std::to_string(n) + " more bytes)");
    const uint8_t* r = p_ + pos_;
    pos_ += n;
    return r;
  }
  uint8_t read_u8() { return *take(1); }
  uint64_t read_le(size_t n) {
    const uint8_t* b = take(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(b[i]) << (8 * i);
    return v;
  }
  std::string read_str(size_t n) {
    const uint8_t* b = take(n);
    return std::string(reinterpret_cast<const char*>(b), n);
  }
  std::string read_line() {
    std::string s;
    while (true) {
      char c = static_cast<char>(read_u8());
      if (c == '\n') return s;
      s += c;
      if (s.size() > 512) fail("line too long");
    }
  }

  // Counts memory the pickle makes us hold; fails once it is out of proportion to the input.
  void charge(uint64_t bytes) {
    used_ += bytes;
    if (used_ > budget_)
      fail("the pickle would need more than " + std::to_string(budget_ >> 20) + " MB of memory for " +
           std::to_string(size_) + " bytes of input (an amplification pickle?)");
  }
  Ref make(Kind k) {
    charge(kObjectCost);
    auto o = std::make_shared<Object>();
    o->kind = k;
    arena_->objects.push_back(o);
    return o;
  }
  void push(Ref r) {
    if (stack_.size() >= kMaxStack) fail("stack deeper than " + std::to_string(kMaxStack) + " entries");
    stack_.push_back(std::move(r));
  }
  Ref pop() {
    if (stack_.size() <= mark_floor()) fail("stack underflow");
    Ref r = std::move(stack_.back());
    stack_.pop_back();
    return r;
  }
  Ref& top() {
    if (stack_.size() <= mark_floor()) fail("stack underflow");
    return stack_.back();
  }
  size_t mark_floor() const { return marks_.empty() ? 0 : marks_.back(); }
  std::vector<Ref> pop_to_mark() {
    if (marks_.empty()) fail("MARK expected");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Ref> items(std::make_move_iterator(stack_.begin() + m), std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  Ref tuple(std::vector<Ref> items) {
    if (items.empty()) return empty_tuple_;
    charge(items.size() * sizeof(Ref));
    Ref t = make(Kind::Tuple);
    t->items = std::move(items);
    return t;
  }
  Ref integer(int64_t v) {
    if (v >= 0 && v < 256) {  // small ints (BININT1) are shared, as in Python
      Ref& cached = small_ints_[v];
      if (!cached) {
        cached = make(Kind::Int);
        cached->i = v;
      }
      return cached;
    }
    Ref r = make(Kind::Int);
    r->i = v;
    return r;
  }
  Ref string(Kind k, std::string s) {
    charge(s.size());
    Ref r = make(k);
    r->s = std::move(s);
    return r;
  }
  void memo_put(uint64_t idx) {
    const Ref& value = top();
    auto [it, inserted] = memo_.try_emplace(idx, value);
    if (inserted) charge(kMemoEntryCost);
    else it->second = value;
  }
  Ref memo_get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) fail("memo entry " + std::to_string(idx) + " is not defined");
    return it->second;
  }

  Ref global(const std::string& module, const std::string& name) {
    std::string full = module + "." + name;
    bool allowed = storage_types().count(full) > 0;
    for (const char* c : kCallables) allowed = allowed || full == c;
    if (!allowed)
      throw Error(source_ + ": refusing to load: the pickle references the global " + quote_name(full) +
                  ", which is not a tensor-rebuild global (only OrderedDict, torch._utils._rebuild_* and "
                  "torch.*Storage are allowed)");
    return string(Kind::Global, full);
  }

  static std::vector<int64_t> int_tuple(const Ref& r, const char* what, Unpickler& u) {
    if (r->kind != Kind::Tuple && r->kind != Kind::List) u.fail(std::string(what) + " must be a tuple");
    u.charge(r->items.size() * sizeof(int64_t));  // a shared tuple can be copied into many tensors
    std::vector<int64_t> v;
    for (const auto& e : r->items) {
      if (e->kind != Kind::Int) u.fail(std::string(what) + " must hold integers");
      v.push_back(e->i);
    }
    return v;
  }

  Ref reduce(const Ref& callable, const Ref& args) {
    if (callable->kind != Kind::Global) fail("REDUCE on a non-callable");
    if (args->kind != Kind::Tuple) fail("REDUCE arguments are not a tuple");
    const std::string& fn = callable->s;
    const auto& a = args->items;
    if (fn == "collections.OrderedDict") {
      if (!a.empty()) fail("OrderedDict with arguments is not supported");
      return make(Kind::Dict);
    }
    if (fn == "torch._utils._rebuild_parameter") {
      if (a.empty() || a[0]->kind != Kind::Tensor) fail("_rebuild_parameter expects a tensor");
      return a[0];
    }
    if (fn == "torch._utils._rebuild_tensor_v2" || fn == "torch._utils._rebuild_tensor") {
      if (a.size() < 4) fail(fn + " expects (storage, offset, size, stride, ...)");
      if (a[0]->kind != Kind::Storage) fail(fn + ": first argument is not a storage");
      if (a[1]->kind != Kind::Int) fail(fn + ": storage offset is not an integer");
      Ref t = make(Kind::Tensor);
      t->storage = a[0];
      t->offset = a[1]->i;
      t->shape = int_tuple(a[2], "tensor size", *this);
      t->strides = int_tuple(a[3], "tensor stride", *this);
      if (t->shape.size() != t->strides.size()) fail("tensor size and stride have different ranks");
      return t;
    }
    fail("global '" + fn + "' is not callable here");
  }

  void step(uint8_t op) {
    op_pos_ = pos_ - 1;
    switch (op) {
      case 0x80: { uint8_t proto = read_u8(); if (proto > 5) fail("pickle protocol " + std::to_string(proto)); break; }  // PROTO
      case 0x95: take(8); break;  // FRAME: framing is transparent for an in-memory reader
      case '(':  // MARK
        if (marks_.size() >= kMaxMarks) fail("more than " + std::to_string(kMaxMarks) + " nested MARKs");
        marks_.push_back(stack_.size());
        break;
      case '0': pop(); break;                              // POP
      case '1': pop_to_mark(); break;                      // POP_MARK
      case '2': push(top()); break;                        // DUP
      case 'N': push(none_); break;
      case 0x88: push(true_); break;   // NEWTRUE
      case 0x89: push(false_); break;  // NEWFALSE
      case 'J': push(integer(static_cast<int32_t>(read_le(4)))); break;  // BININT
      case 'K': push(integer(read_u8())); break;                          // BININT1
      case 'M': push(integer(static_cast<int64_t>(read_le(2)))); break;  // BININT2
      case 0x8a: {  // LONG1
        size_t n = read_u8();
        const uint8_t* b = take(n);
        if (n <= 8) {
          uint64_t v = 0;
          for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(b[i]) << (8 * i);
          if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~0ull << (8 * n);  // sign-extend
          push(integer(static_cast<int64_t>(v)));
        } else {
          push(string(Kind::BigInt, std::string(reinterpret_cast<const char*>(b), n)));
        }
        break;
      }
      case 'G': {  // BINFLOAT (big-endian double)
        const uint8_t* b = take(8);
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | b[i];
        Ref r = make(Kind::Float);
        std::memcpy(&r->f, &v, 8);
        push(r);
        break;
      }
      case 'X': push(string(Kind::Str, read_str(read_le(4)))); break;     // BINUNICODE
      case 0x8c: push(string(Kind::Str, read_str(read_u8()))); break;     // SHORT_BINUNICODE
      case 0x8d: push(string(Kind::Str, read_str(read_le(8)))); break;    // BINUNICODE8
      case 'T': push(string(Kind::Bytes, read_str(read_le(4)))); break;   // BINSTRING
      case 'U': push(string(Kind::Bytes, read_str(read_u8()))); break;    // SHORT_BINSTRING
      case 'B': push(string(Kind::Bytes, read_str(read_le(4)))); break;   // BINBYTES
      case 'C': push(string(Kind::Bytes, read_str(read_u8()))); break;    // SHORT_BINBYTES
      case ')': push(empty_tuple_); break;                                // EMPTY_TUPLE
      case 't': push(tuple(pop_to_mark())); break;                        // TUPLE
      case 0x85: { Ref a = pop(); push(tuple({a})); break; }              // TUPLE1
      case 0x86: { Ref b = pop(), a = pop(); push(tuple({a, b})); break; }                 // TUPLE2
      case 0x87: { Ref c = pop(), b = pop(), a = pop(); push(tuple({a, b, c})); break; }   // TUPLE3
      case ']': push(make(Kind::List)); break;                            // EMPTY_LIST
      case 'l': { Ref l = make(Kind::List); l->items = pop_to_mark(); charge(2 * sizeof(Ref) * l->items.size()); push(l); break; }  // LIST
      case 'a': { Ref v = pop(); Ref& l = top(); if (l->kind != Kind::List) fail("APPEND to a non-list"); charge(2 * sizeof(Ref)); l->items.push_back(v); break; }
      case 'e': {  // APPENDS
        auto items = pop_to_mark();
        Ref& l = top();
        if (l->kind != Kind::List) fail("APPENDS to a non-list");
        charge(2 * sizeof(Ref) * items.size());
        for (auto& i : items) l->items.push_back(i);
        break;
      }
      case '}': push(make(Kind::Dict)); break;  // EMPTY_DICT
      case 'd': {                                // DICT
        auto items = pop_to_mark();
        if (items.size() % 2) fail("DICT with an odd number of items");
        Ref d = make(Kind::Dict);
        charge(sizeof(Ref) * items.size() * 2);
        for (size_t i = 0; i < items.size(); i += 2) d->dict.emplace_back(items[i], items[i + 1]);
        push(d);
        break;
      }
      case 's': {  // SETITEM
        Ref v = pop(), k = pop();
        Ref& d = top();
        if (d->kind != Kind::Dict) fail("SETITEM on a non-dict");
        charge(4 * sizeof(Ref));
        d->dict.emplace_back(k, v);
        break;
      }
      case 'u': {  // SETITEMS
        auto items = pop_to_mark();
        if (items.size() % 2) fail("SETITEMS with an odd number of items");
        Ref& d = top();
        if (d->kind != Kind::Dict) fail("SETITEMS on a non-dict");
        charge(sizeof(Ref) * items.size() * 2);
        for (size_t i = 0; i < items.size(); i += 2) d->dict.emplace_back(items[i], items[i + 1]);
        break;
      }
      case 'c': {  // GLOBAL "module\nname\n"
        std::string module = read_line();
        std::string name = read_line();
        push(global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Ref name = pop(), module = pop();
        if (module->kind != Kind::Str || name->kind != Kind::Str) fail("STACK_GLOBAL needs two strings");
        push(global(module->s, name->s));
        break;
      }
      case 'R': { Ref args = pop(), fn = pop(); push(reduce(fn, args)); break; }  // REDUCE
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
        Ref args = pop(), cls = pop();
        if (cls->kind != Kind::Global || cls->s != "collections.OrderedDict") fail("NEWOBJ is only allowed for OrderedDict");
        push(reduce(cls, args));
        break;
      }
      case 'b': {  // BUILD: state on a dict (e.g. _metadata) or tensor is ignored, never executed
        pop();
        Kind k = top()->kind;
        if (k != Kind::Dict && k != Kind::Tensor) fail("BUILD on an unsupported object");
        break;
      }
      case 'q': memo_put(read_u8()); break;               // BINPUT
      case 'r': memo_put(read_le(4)); break;              // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); break;           // MEMOIZE
      case 'h': push(memo_get(read_u8())); break;         // BINGET
      case 'j': push(memo_get(read_le(4))); break;        // LONG_BINGET
      case 'Q': {                                         // BINPERSID
        Ref pid = pop();
        if (!persistent_load_) fail("persistent id without a storage loader");
        charge(kObjectCost);
        push(persistent_load_(pid));
        break;
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unsupported opcode ") + hex);
      }
    }
  }

  const uint8_t* p_;
  size_t size_, pos_ = 0, op_pos_ = 0;
  const PersistentLoad& persistent_load_;
  const std::string& source_;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Ref> memo_;
  std::shared_ptr<Arena> arena_ = std::make_shared<Arena>();  // also cleared when a load fails
  uint64_t budget_, used_ = 0;
  Ref none_, true_, false_, empty_tuple_, small_ints_[256];
};

}  // namespace

Result load(const uint8_t* data, size_t size, const PersistentLoad& persistent_load, const std::string& source) {
  return Unpickler(data, size, persistent_load, source).run();
}

DType storage_dtype(const Object& global, const std::string& source) {
  if (global.kind == Kind::Global) {
    auto it = storage_types().find(global.s);
    if (it != storage_types().end()) return it->second;
  }
  throw Error(source + ": persistent id does not name a storage type");
}

}  // namespace hf2onnx::hf::pickle
