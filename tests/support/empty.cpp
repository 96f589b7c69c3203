// keeps dnn_test_support non-empty
