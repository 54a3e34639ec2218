#include "report/escape.hpp"

#include <gtest/gtest.h>

namespace memscope::report {
namespace {

TEST(Escape, Html) {
  EXPECT_EQ(html_escape("a</script><b>\"x\" & 'y'"),
            "a&lt;/script&gt;&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;");
}

TEST(Escape, JsonForScriptCannotCloseTheScript) {
  EXPECT_EQ(json_for_script(R"({"c":"</script><!--&"})"),
            R"({"c":"\u003c/script\u003e\u003c!--\u0026"})");
}

TEST(Escape, CsvFieldsQuotedOnlyWhenNeeded) {
  EXPECT_EQ(csv_field("python3"), "python3");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
}

TEST(Escape, GnuplotStrings) {
  EXPECT_EQ(gnuplot_quote("it's"), "'it''s'");
  EXPECT_EQ(gnuplot_quote("a\nb\tc"), "'abc'");
}

TEST(Escape, ValidUtf8RepairsOnlyWhatIsBroken) {
  EXPECT_EQ(valid_utf8("plain"), "plain");
  EXPECT_EQ(valid_utf8("caf\xc3\xa9 \xe6\x98\xbe"), "caf\xc3\xa9 \xe6\x98\xbe");
  EXPECT_EQ(valid_utf8("a\xff"
                       "b"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(valid_utf8("\xc3"), "\xef\xbf\xbd");                                  // truncated
  EXPECT_EQ(valid_utf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");                  // overlong
  EXPECT_EQ(valid_utf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
}

}  // namespace
}  // namespace memscope::report
