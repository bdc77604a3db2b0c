package server

const soReusePort = 0xf // SO_REUSEPORT
