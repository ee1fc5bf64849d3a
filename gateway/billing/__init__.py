"""gateway.billing"""
