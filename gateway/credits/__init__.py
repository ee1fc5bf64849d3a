"""gateway.credits"""
