#include "cli/tui_screen.hpp"

// Real functions, not curses' macros (erase(), refresh() and timeout() would clash).
#define NCURSES_NOMACROS 1
#include <curses.h>
#include <fmt/format.h>
#include <langinfo.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace memscope::cli::tui {
namespace {

volatile sig_atomic_t g_curses_active = 0;
volatile sig_atomic_t g_quit = 0;

constexpr std::array<int, 5> kFatalSignals = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGTERM};
constexpr std::array<int, 2> kQuitSignals = {SIGINT, SIGHUP};
std::array<struct sigaction, kFatalSignals.size()> g_previous_fatal{};
std::array<struct sigaction, kQuitSignals.size()> g_previous_quit{};

// endwin() is not async-signal-safe, but a crashing full-screen program that leaves the
// terminal in raw mode is worse; every curses program's crash handler makes the same trade.
// With the default action back, the signal raised again (delivered when the handler returns;
// a fault re-faults) ends the process as it would have: a core dump for SIGSEGV, 143 for
// SIGTERM.
void on_fatal_signal(int signal_number) {
  if (g_curses_active) {
    g_curses_active = 0;
    endwin();
  }
  signal(signal_number, SIG_DFL);
  raise(signal_number);
}

void on_quit_signal(int) { g_quit = 1; }

SCREEN* g_screen = nullptr;

enum Pair : short { kPairGood = 1, kPairWarn, kPairBad, kPairTitle, kPairDim, kPairPrompt };

}  // namespace

Result<std::unique_ptr<Screen>> Screen::open(bool color) {
  std::setlocale(LC_CTYPE, "");
  const char* codeset = nl_langinfo(CODESET);
  const bool utf8 = codeset && std::strcmp(codeset, "UTF-8") == 0;
  // newterm, unlike initscr, reports an unknown TERM instead of exiting.
  g_screen = newterm(nullptr, stdout, stdin);
  if (!g_screen) {
    const char* term = std::getenv("TERM");
    return make_error(fmt::format("cannot start the terminal: TERM '{}' is unknown or unusable",
                                  term ? term : ""));
  }
  set_term(g_screen);
  g_curses_active = 1;
  g_quit = 0;
  for (size_t i = 0; i < kFatalSignals.size(); ++i) {
    struct sigaction action {};
    action.sa_handler = on_fatal_signal;
    sigemptyset(&action.sa_mask);
    sigaction(kFatalSignals[i], &action, &g_previous_fatal[i]);
  }
  for (size_t i = 0; i < kQuitSignals.size(); ++i) {
    struct sigaction action {};
    action.sa_handler = on_quit_signal;
    sigemptyset(&action.sa_mask);
    sigaction(kQuitSignals[i], &action, &g_previous_quit[i]);
  }
  cbreak();
  noecho();
  nonl();
  keypad(stdscr, TRUE);
  curs_set(0);
  set_escdelay(25);
  auto screen = std::unique_ptr<Screen>(new Screen());
  screen->utf8_ = utf8;
  if (color && has_colors()) {
    start_color();
    use_default_colors();
    init_pair(kPairGood, COLOR_GREEN, -1);
    init_pair(kPairWarn, COLOR_YELLOW, -1);
    init_pair(kPairBad, COLOR_RED, -1);
    init_pair(kPairTitle, COLOR_BLACK, COLOR_CYAN);
    init_pair(kPairDim, COLOR_BLUE, -1);
    init_pair(kPairPrompt, COLOR_BLACK, COLOR_YELLOW);
    screen->color_ = true;
  }
  return screen;
}

Screen::~Screen() {
  if (g_curses_active) {
    g_curses_active = 0;
    endwin();
  }
  for (size_t i = 0; i < kFatalSignals.size(); ++i) {
    sigaction(kFatalSignals[i], &g_previous_fatal[i], nullptr);
  }
  for (size_t i = 0; i < kQuitSignals.size(); ++i) {
    sigaction(kQuitSignals[i], &g_previous_quit[i], nullptr);
  }
  if (g_screen) {
    delscreen(g_screen);
    g_screen = nullptr;
  }
}

int Screen::rows() const { return getmaxy(stdscr); }
int Screen::cols() const { return getmaxx(stdscr); }

int Screen::attributes(Style style) const {
  const auto pair = [this](short number, chtype fallback) -> chtype {
    return color_ ? static_cast<chtype>(COLOR_PAIR(number)) : fallback;
  };
  chtype bits = A_NORMAL;
  switch (style) {
    case Style::kNormal: break;
    case Style::kTitle: bits = pair(kPairTitle, A_REVERSE) | A_BOLD; break;
    case Style::kHeader: bits = A_BOLD | A_UNDERLINE; break;
    case Style::kSelected: bits = A_REVERSE; break;
    case Style::kGood: bits = pair(kPairGood, A_NORMAL); break;
    case Style::kWarn: bits = pair(kPairWarn, A_BOLD); break;
    case Style::kBad: bits = pair(kPairBad, A_BOLD) | A_BOLD; break;
    case Style::kDim: bits = pair(kPairDim, A_DIM); break;
    case Style::kPrompt: bits = pair(kPairPrompt, A_REVERSE) | A_BOLD; break;
  }
  return static_cast<int>(bits);
}

void Screen::erase() { ::werase(stdscr); }

void Screen::text(int y, int x, std::string_view text, Style style) {
  const int width = cols();
  if (y < 0 || y >= rows() || x < 0 || x >= width) return;
  const auto room = static_cast<size_t>(width - x);
  if (text.size() > room) text = text.substr(0, room);
  const int attrs = attributes(style);
  attron(attrs);
  mvaddnstr(y, x, text.data(), static_cast<int>(text.size()));
  attroff(attrs);
}

void Screen::line(int y, std::string_view text, Style style) {
  std::string padded(text);
  const auto width = static_cast<size_t>(std::max(cols(), 0));
  padded.resize(width, ' ');
  this->text(y, 0, padded, style);
}

void Screen::sparkline(int y, int x, const std::vector<int>& levels, Style style) {
  static constexpr std::array<const char*, 8> kBlocks = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  static constexpr const char* kAscii = "_.,-=+*#";
  const int attrs = attributes(style);
  attron(attrs);
  int column = x;
  for (const int level : levels) {
    if (column >= cols()) break;
    const auto index = static_cast<size_t>(level < 0 ? 0 : (level > 7 ? 7 : level));
    if (utf8_) {
      mvaddstr(y, column, kBlocks[index]);
    } else {
      mvaddch(y, column, static_cast<chtype>(kAscii[index]));
    }
    ++column;
  }
  attroff(attrs);
}

void Screen::show() { ::refresh(); }

int Screen::read_key(int timeout_ms) {
  ::timeout(timeout_ms < 0 ? 0 : timeout_ms);
  const int key = getch();
  return key == ERR ? -1 : key;
}

bool Screen::quit_requested() { return g_quit != 0; }

int key_up() { return KEY_UP; }
int key_down() { return KEY_DOWN; }
int key_page_up() { return KEY_PPAGE; }
int key_page_down() { return KEY_NPAGE; }
int key_home() { return KEY_HOME; }
int key_end() { return KEY_END; }
int key_enter() { return KEY_ENTER; }
int key_backspace() { return KEY_BACKSPACE; }
int key_left() { return KEY_LEFT; }
int key_resize() { return KEY_RESIZE; }

}  // namespace memscope::cli::tui
