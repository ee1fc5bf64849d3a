"""gateway.accounts"""
