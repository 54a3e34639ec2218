// Test helper (header only, used by the *_test.cpp beside it): feeds a parser every variant of a
// well-formed text that a truncated read, a hostile fixture or random bytes could produce. The
// parsers must return, not crash; sanitizer builds turn any overrun into a failure.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace memscope::procfs {

template <class Parse>
void for_each_hostile_variant(std::string_view good, Parse&& parse) {
  // Every truncation, as a short read would leave it.
  for (size_t length = 0; length <= good.size(); ++length) parse(good.substr(0, length));
  // Every byte replaced by each character the parsers treat specially.
  const std::string specials("\0\n ():=,/9-\xff", 12);
  std::string mutated(good);
  for (size_t i = 0; i < mutated.size(); ++i) {
    const char original = mutated[i];
    for (char special : specials) {
      mutated[i] = special;
      parse(std::string_view(mutated));
    }
    mutated[i] = original;
  }
  // Random bytes, and random bytes drawn from the text's own alphabet (a fixed seed, so a failure
  // reproduces).
  std::mt19937 random(12345);
  std::string noise;
  for (int round = 0; round < 200; ++round) {
    noise.resize(random() % 512);
    for (char& c : noise) {
      c = round % 2 == 0 || good.empty() ? static_cast<char>(random() & 0xff)
                                         : good[random() % good.size()];
    }
    parse(std::string_view(noise));
  }
  // Huge numbers and a very long line.
  parse(std::string(good) + std::string(100000, '9'));
  parse(std::string(200000, 'x'));
}

}  // namespace memscope::procfs
