// The ncurses side of `memscope interactive`: opening and restoring the terminal (also when
// memscope crashes or is terminated), styles that degrade to bold/reverse under NO_COLOR, and
// drawing clipped text. Everything drawn comes from report/top_model as plain strings.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace memscope::cli::tui {

enum class Style { kNormal, kTitle, kHeader, kSelected, kGood, kWarn, kBad, kDim, kPrompt };

class Screen {
 public:
  // Starts curses on the terminal of stdin/stdout and installs handlers so SIGSEGV, SIGABRT,
  // SIGBUS, SIGFPE and SIGTERM restore the terminal before the signal's default action.
  // SIGINT and SIGHUP ask the loop to quit (quit_requested()). color: false under NO_COLOR.
  static Result<std::unique_ptr<Screen>> open(bool color);
  ~Screen();  // restores the terminal and the previous signal handlers
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

  int rows() const;
  int cols() const;
  bool utf8() const { return utf8_; }

  void erase();
  // Text at (y, x), clipped to the screen's width.
  void text(int y, int x, std::string_view text, Style style = Style::kNormal);
  // A whole line padded to the screen's width.
  void line(int y, std::string_view text, Style style = Style::kNormal);
  // Levels 0..7 as block characters (or ASCII without UTF-8).
  void sparkline(int y, int x, const std::vector<int>& levels, Style style = Style::kGood);
  void show();

  // The next key, waiting at most timeout_ms; -1 when none came. KEY_RESIZE comes back as a key.
  int read_key(int timeout_ms);
  static bool quit_requested();

 private:
  Screen() = default;
  int attributes(Style style) const;
  bool color_ = false;
  bool utf8_ = false;
};

// Keys read_key returns, without making callers include curses.
int key_up();
int key_down();
int key_page_up();
int key_page_down();
int key_home();
int key_end();
int key_enter();
int key_backspace();
int key_left();
int key_resize();

}  // namespace memscope::cli::tui
