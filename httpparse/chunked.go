package httpparse
