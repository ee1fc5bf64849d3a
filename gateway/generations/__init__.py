"""gateway.generations"""
