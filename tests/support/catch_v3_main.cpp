// With Catch2 v3, main() comes from Catch2::Catch2WithMain; this file only gives the driver library a source.
namespace orchestrix_test_support {
int catch2_v3_driver_anchor = 0;
} // namespace orchestrix_test_support
